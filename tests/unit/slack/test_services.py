"""What Slack's listeners are handed (issue 13: "listeners get the whole Store and query it directly")."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from bot.slack.context import Services
from bot.store.store import Store
from tests.unit.test_layers import bot_imports

SLACK = Path(__file__).resolve().parents[3] / "bot" / "slack"


def test_listeners_get_services_never_the_store() -> None:
    hints = typing.get_type_hints(Services)
    assert [f.name for f in dataclasses.fields(Services) if hints[f.name] is Store] == []


def test_only_the_reporter_holds_the_store_on_the_slack_side() -> None:
    """The reporter writes what it renders to the cards and the outbox; every listener goes through a service."""
    holders = sorted(
        str(path.relative_to(SLACK.parent.parent))
        for path in SLACK.rglob("*.py")
        if "bot.store.store" in bot_imports(path)
    )
    assert holders == ["bot/slack/reporter.py"]
