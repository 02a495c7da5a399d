"""Names in the catalog (issue 15, item 7): every channel and principal entry is found with its place, names are
replaced by ids everywhere they are written (workflow approvers included), ids are left alone, and a value that
is neither an id nor a name is still refused with what would work."""

from __future__ import annotations

import pytest
import yaml

from bot.catalog.catalog import Catalog
from bot.catalog.load import parse_catalog
from bot.checks.names import is_name, names_in, with_ids
from bot.errors import ConfigError

CATALOG = """
defaults: {channel: "#data-alerts", owners: ["@data-eng"], allow_change: [alice@example.com]}
routes: [{tag: finance, channel: "#finance-data"}]
connections:
  inv: {provider: invision, base_url: "https://x/invision/", api_key: "${KEY}"}
pipelines:
  a: {connection: inv, dataflow_id: f1, owners: [U0ALICE01, bob@example.com], allow_run: ["#ops", C0OPS, "*"]}
  b: {connection: inv, dataflow_id: f2, tags: [finance]}
workflows:
  daily:
    steps:
      run: {pipeline: a, on_success: ok}
      ok: {approval: {approvers: ["@data-eng", carol@example.com]}}
"""
IDS = {"#data-alerts": "C0ALERTS", "#finance-data": "C0FIN", "#ops": "C0OPS", "@data-eng": "S0DATAENG",
       "alice@example.com": "U0ALICE", "bob@example.com": "U0BOB", "carol@example.com": "U0CAROL"}


def load(text: str = CATALOG) -> Catalog:
    return parse_catalog(yaml.safe_load(text), {"KEY": "k" * 16})


def test_every_name_is_found_with_where_it_is_written() -> None:
    names = names_in(load())
    assert names.unresolved() == sorted(IDS)
    assert names.where("#finance-data") == "routes[0].channel"
    assert names.where("carol@example.com") == "workflows.daily.steps.ok.approval.approvers"
    assert names.where("bob@example.com") == "pipelines.a.owners"


def test_names_become_ids_everywhere_and_ids_stay() -> None:
    catalog = with_ids(load(), IDS)
    assert names_in(catalog).unresolved() == []
    assert catalog.defaults.channel == "C0ALERTS"
    assert catalog.defaults.allow_change == ("U0ALICE",)
    assert catalog.routes[0].channel == "C0FIN"
    a = catalog.pipelines["a"]
    assert a.owners == ("U0ALICE01", "U0BOB")
    assert a.allow_run == ("C0OPS", "C0OPS", "*")
    assert catalog.pipelines["b"].owners == ("S0DATAENG",)  # the defaults' owners, applied when loading
    assert catalog.channel_for(catalog.pipelines["b"]) == "C0FIN"
    approval = catalog.workflows["daily"].steps["ok"].approval
    assert approval is not None and approval.approvers == ("S0DATAENG", "U0CAROL")
    assert catalog.workflows["daily"].owners == ("S0DATAENG",)


@pytest.mark.parametrize(("value", "name"), [("#ops", True), ("@data-eng", True), ("a@b.io", True),
                                             ("U0ALICE", False), ("C0OPS", False), ("*", False)])
def test_is_name(value: str, name: bool) -> None:
    assert is_name(value) is name


def test_a_value_that_is_neither_an_id_nor_a_name_is_refused_with_what_works() -> None:
    with pytest.raises(ConfigError) as err:
        load(CATALOG.replace("bob@example.com", "bob"))
    text = "\n".join(err.value.problems)
    assert "pipelines.a.owners.1: 'bob' is not a Slack id nor a name" in text
    assert "a person's e-mail or id (U…), a user group's @handle or id (S…)" in text
