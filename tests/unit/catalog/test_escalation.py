"""``escalate_after`` and ``escalate_to`` (issue 14, item 7): per pipeline, else from ``defaults``; ``none`` turns
escalation off; each problem in plain words at its place in the file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.catalog.load import load_catalog
from bot.checks.names import names_in, with_ids
from bot.errors import ConfigError

CATALOG = """\
defaults:
  channel: "#alerts"
  owners: [U0BOB]
{defaults}connections:
  riv: {{provider: rivery, api_token: "${{RIVERY_TOKEN}}"}}
pipelines:
  orders:
    connection: riv
    river_id: 5e8e1eb46b028e37b73f44f0
{orders}  leads:
    connection: riv
    river_id: 63b724fc690def001131d242
{leads}"""
ENV = {"RIVERY_TOKEN": "rivery-secret-token"}


def _write(tmp: Path, *, defaults: str = "", orders: str = "", leads: str = "") -> Path:
    path = tmp / "pipelines.yml"
    path.write_text(CATALOG.format(defaults=defaults, orders=orders, leads=leads))
    return path


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_catalog(path, ENV)
    return caught.value.problems


def test_a_pipeline_escalates_as_the_defaults_say_unless_it_says_otherwise(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        defaults='  escalate_after: 15m\n  escalate_to: ["@on-call"]\n',
        orders="    escalate_after: 1h30m\n    escalate_to: [S0ORDERS, U0CAROL]\n",
    )
    catalog = load_catalog(path, ENV)
    orders, leads = catalog.pipelines["orders"], catalog.pipelines["leads"]
    assert (orders.escalate_after, orders.escalate_to) == (timedelta(hours=1, minutes=30), ("S0ORDERS", "U0CAROL"))
    assert (leads.escalate_after, leads.escalate_to) == (timedelta(minutes=15), ("@on-call",))
    assert not catalog.warnings
    # the handle is resolved to its id at start, like the owners', wherever it is written
    assert names_in(catalog).where("@on-call") == "defaults.escalate_to, pipelines.leads.escalate_to"
    resolved = with_ids(catalog, {"@on-call": "S0ONCALL"})
    assert resolved.defaults.escalate_to == ("S0ONCALL",)
    assert resolved.pipelines["leads"].escalate_to == ("S0ONCALL",)


@pytest.mark.parametrize("off", ["none", "None", "false", "off"])
def test_none_turns_a_pipelines_escalation_off(tmp_path: Path, off: str) -> None:
    path = _write(tmp_path, defaults="  escalate_after: 10m\n", orders=f"    escalate_after: {off}\n")
    catalog = load_catalog(path, ENV)
    assert catalog.pipelines["orders"].escalate_after is None
    assert catalog.pipelines["leads"].escalate_after == timedelta(minutes=10)


def test_without_escalate_after_nothing_escalates(tmp_path: Path) -> None:
    catalog = load_catalog(_write(tmp_path, orders="    escalate_to: [S0ONCALL]\n"), ENV)
    assert [p.escalate_after for p in catalog.pipelines.values()] == [None, None]
    catalog = load_catalog(_write(tmp_path, defaults="  escalate_after: none\n"), ENV)
    assert [p.escalate_after for p in catalog.pipelines.values()] == [None, None]


def test_each_problem_is_said_plainly_at_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        defaults='  escalate_to: ["#ops", "*"]\n',
        orders="    escalate_after: soon\n    escalate_to: S0ONCALL\n",
        leads="    escalate_after: -5m\n",
    )
    pinged = "cannot be pinged when an alert escalates; escalate_to is a user group (S… or @handle) or people (U… or an e-mail)"
    assert _problems(path) == [
        f"{path}:4: defaults.escalate_to: '#ops' {pinged}",
        f"{path}:4: defaults.escalate_to: '*' {pinged}",
        f"{path}:11: pipelines.orders.escalate_after: 'soon' is not a duration; write it like 90s, 15m, 1h30m or 2d, "
        "or none for no escalation",
        f"{path}:12: pipelines.orders.escalate_to: escalate_to must be a list, e.g. [S0ONCALL]",
        f"{path}:16: pipelines.leads.escalate_after: '-5m' is not a duration; write it like 90s, 15m, 1h30m or 2d, "
        "or none for no escalation",
    ]


def test_an_escalation_that_would_ping_nobody_is_a_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, orders="    owners: []\n    escalate_after: 1h\n")
    catalog = load_catalog(path, ENV)
    assert catalog.warnings == (
        "pipelines.orders: its alerts escalate after 1h but nobody would be pinged: set owners or escalate_to (or "
        "escalate_after: none)",
    )
