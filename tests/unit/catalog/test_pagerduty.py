"""``pagerduty: {routing_key: "${PD_ROUTING_KEY}"}`` on a pipeline or in ``defaults``: read from the environment,
32 characters, never shown; each problem in plain words at its place in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalog.load import load_catalog
from bot.errors import ConfigError

KEY = "e93facc04764012d7bfb002500d5d1a6"
OTHER = "0123456789abcdef0123456789abcdef"

CATALOG = """\
defaults:
  channel: "#alerts"
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


def _write(tmp: Path, *, defaults: str = "", orders: str = "", leads: str = "") -> Path:
    path = tmp / "pipelines.yml"
    path.write_text(CATALOG.format(defaults=defaults, orders=orders, leads=leads))
    return path


def _env(**more: str) -> dict[str, str]:
    return {"RIVERY_TOKEN": "rivery-secret-token", **more}


def _problems(path: Path, env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_catalog(path, env)
    return caught.value.problems


def test_a_pipeline_pages_its_own_service_and_the_others_the_defaults_one(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        defaults='  pagerduty: {routing_key: "${PD_ROUTING_KEY}"}\n',
        orders='    pagerduty: {routing_key: "${PD_ORDERS}"}\n',
    )
    catalog = load_catalog(path, _env(PD_ROUTING_KEY=KEY, PD_ORDERS=OTHER))
    orders, leads = catalog.pipelines["orders"].pagerduty, catalog.pipelines["leads"].pagerduty
    assert orders is not None and orders.routing_key.get_secret_value() == OTHER
    assert leads is not None and leads.routing_key.get_secret_value() == KEY
    assert KEY not in repr(catalog.pipelines["leads"]) and "PD_ROUTING_KEY" in repr(leads)
    assert [p.name for p in catalog.paged()] == ["orders", "leads"]


def test_a_pipeline_may_opt_out_of_the_defaults_service_and_none_pages_without_one(tmp_path: Path) -> None:
    path = _write(
        tmp_path, defaults='  pagerduty: {routing_key: "${PD_ROUTING_KEY}"}\n', leads="    pagerduty: false\n"
    )
    catalog = load_catalog(path, _env(PD_ROUTING_KEY=KEY))
    assert catalog.pipelines["leads"].pagerduty is None
    assert [p.name for p in catalog.paged()] == ["orders"]
    assert load_catalog(_write(tmp_path), _env()).paged() == []


@pytest.mark.parametrize(
    ("orders", "env", "said"),
    [
        (
            '    pagerduty: {routing_key: "${PD_ROUTING_KEY}"}\n',
            {},
            "pipelines.orders.pagerduty.routing_key: environment variable PD_ROUTING_KEY is not set; set it in .env "
            "or the environment",
        ),
        (
            '    pagerduty: {routing_key: "${PD_ROUTING_KEY}"}\n',
            {"PD_ROUTING_KEY": "  "},
            "pipelines.orders.pagerduty.routing_key: environment variable PD_ROUTING_KEY is empty; set it in .env "
            "or the environment",
        ),
        (
            f"    pagerduty: {{routing_key: {KEY}}}\n",
            {},
            "pipelines.orders.pagerduty.routing_key: secrets do not belong in the catalog; put the Integration Key "
            "in an environment variable and write routing_key: ${PD_ROUTING_KEY}",
        ),
        (
            '    pagerduty: {routing_key: "${PD_ROUTING_KEY}"}\n',
            {"PD_ROUTING_KEY": KEY[:31]},
            "pipelines.orders.pagerduty.routing_key: the value of PD_ROUTING_KEY is not a PagerDuty Integration Key "
            "(31 characters; one is 32 letters and digits: Service → Integrations → Events API v2 → Integration Key)",
        ),
        (
            '    pagerduty: {routing_key: "${PD_ROUTING_KEY}", service: ops}\n',
            {"PD_ROUTING_KEY": KEY},
            "pipelines.orders.pagerduty.service: unknown key; known keys: routing_key, url",
        ),
        (
            "    pagerduty: {}\n",
            {},
            "pipelines.orders.pagerduty.routing_key: routing_key is required: the 32-character Integration Key of an "
            "Events API v2 integration on the PagerDuty service, written as ${PD_ROUTING_KEY}",
        ),
        (
            "    pagerduty: ops-team\n",
            {},
            'pipelines.orders.pagerduty: must be a mapping like pagerduty: {routing_key: "${PD_ROUTING_KEY}"} '
            "(or false, to page nobody)",
        ),
    ],
    ids=["unset", "empty", "written-in-the-file", "wrong-length", "unknown-key", "missing", "not-a-mapping"],
)
def test_each_routing_key_problem_is_said_plainly_at_its_line_without_the_key(
    tmp_path: Path, orders: str, env: dict[str, str], said: str
) -> None:
    path = _write(tmp_path, orders=orders)
    problems = _problems(path, _env(**env))
    assert problems == [f"{path}:9: {said}"], problems
    assert not any(KEY[:8] in line for line in problems)


def test_a_defaults_problem_is_said_once_at_the_defaults_line(tmp_path: Path) -> None:
    path = _write(tmp_path, defaults='  pagerduty: {routing_key: "${PD_KEY}"}\n')
    assert _problems(path, _env(PD_KEY="short-one")) == [
        f"{path}:3: defaults.pagerduty.routing_key: the value of PD_KEY is not a PagerDuty Integration Key (9 "
        "characters; one is 32 letters and digits: Service → Integrations → Events API v2 → Integration Key)"
    ]


def test_a_service_page_is_kept_for_the_alerts_link_and_a_wrong_one_said_plainly(tmp_path: Path) -> None:
    url = "https://acme.pagerduty.com/service-directory/PABC123"
    path = _write(tmp_path, defaults=f'  pagerduty: {{routing_key: "${{PD_ROUTING_KEY}}", url: "{url}"}}\n')
    leads = load_catalog(path, _env(PD_ROUTING_KEY=KEY)).pipelines["leads"].pagerduty
    assert leads is not None and leads.url == url
    for wrong in ("http://acme.pagerduty.com/x", "acme.pagerduty.com", "https://a b", "https://x|y>"):
        path = _write(tmp_path, defaults=f'  pagerduty: {{routing_key: "${{PD_ROUTING_KEY}}", url: "{wrong}"}}\n')
        [problem] = _problems(path, _env(PD_ROUTING_KEY=KEY))
        assert "defaults.pagerduty.url: must be the https address" in problem and KEY not in problem, problem
