"""Message keys and stored enum values are written to the database: a key spelt differently would post again what
was already posted, an enum value spelt differently would not read back. These pin them to what is stored."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime
from pathlib import Path

from bot.models import RunState
from bot.store import keys
from bot.store.alerting import AlertKind, AlertState
from bot.store.outbox import OutboxState
from bot.store.records import STARTING, WAITING, OutboxKind, RunOrigin, StoredState


def test_message_keys_are_the_stored_ones() -> None:
    assert keys.run_card(7) == "run:7"
    assert keys.run_failure(7) == "run:7:failure"
    assert keys.run_stuck(7) == "run:7:stuck"
    assert keys.run_reply(7, keys.cancel_note("U1")) == "run:7:cancel:U1"
    assert keys.workflow_card(3) == "workflow:3"
    assert keys.workflow_reply(3, keys.step_not_started_note("load")) == "workflow:3:step-load-start"
    assert keys.alert_group("C1", 12) == "alerts:C1:12"
    assert keys.health_group("rivery-us") == "health:rivery-us"
    assert keys.health_message("rivery-us", 4) == "health:rivery-us:4"
    assert keys.back(keys.health_message("rivery-us", 4)) == "health:rivery-us:4:back"
    assert keys.credential("tailer", datetime(2026, 1, 2, tzinfo=UTC)) == "credential:tailer:1767312000"
    assert keys.digest("C1", date(2026, 11, 22)) == "digest:C1:2026-11-22"
    assert keys.channel_problem("C9") == "channel-problem:C9"


def test_the_kinds_of_key_are_told_apart() -> None:
    assert keys.is_run_card(keys.run_card(1)) and not keys.is_run_card(keys.workflow_card(1))
    assert keys.is_alert_group(keys.alert_group("C1", 1)) and not keys.is_alert_group(keys.health_group("x"))
    assert keys.RUN_CARDS_LIKE == "run:%"


def test_stored_run_states_are_every_run_state_and_the_two_before_an_answer() -> None:
    assert {s.value for s in StoredState} == {s.value for s in RunState} | {"starting", "waiting"}
    assert (STARTING, WAITING) == ("starting", "waiting")
    stored: str = StoredState.FAILED  # as str: mypy takes literals of two enums (or an enum and a str) as never equal
    provider: str = RunState.FAILED
    assert stored == provider == "failed"  # a stored state compares with the provider's


def test_enum_values_are_the_stored_strings() -> None:
    assert [o.value for o in RunOrigin] == ["slack", "schedule", "retry", "workflow", "watch"]
    assert [k.value for k in OutboxKind] == ["thread", "post", "function"]
    assert [s.value for s in OutboxState] == ["pending", "sent", "dead"]
    assert [s.value for s in AlertState] == ["pending", "open", "recovered"]
    assert [k.value for k in AlertKind] == ["failure", "unreachable"]


#: the first word of every key ``bot.store.keys`` builds
KEY_WORDS = ("run:", "workflow:", "alerts:", "health:", "escalate:", "credential:", "digest:", "channel-problem:",
             "subs:", "notify:", "function:", "cancel:")
#: strings of the same shape that are not message keys, each with its reason
NOT_KEYS = {
    # the name of a PostgreSQL advisory lock taken while an alert of the pipeline is opened: stored nowhere
    ("bot/store/alerting.py", "alerts:"),
}


def test_message_keys_are_built_in_bot_store_keys_only() -> None:
    """Issue 13 ("one module for message keys"; ``f"run:{id}:failure"`` was built in 8 files): a key spelt
    anywhere else could drift from the one ``keys`` builds and post a message twice."""
    bot = Path(__file__).resolve().parents[3] / "bot"
    found = set()
    for path in sorted(bot.rglob("*.py")):
        if path == bot / "store" / "keys.py" or (bot / "emulators") in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            pieces = node.values[:1] if isinstance(node, ast.JoinedStr) else [node.left] if (
                isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)) else []
            for piece in pieces:
                if isinstance(piece, ast.Constant) and isinstance(piece.value, str):
                    word = next((w for w in KEY_WORDS if piece.value.startswith(w)), None)
                    if word is not None:
                        found.add((str(path.relative_to(bot.parent)), word))
    assert found - NOT_KEYS == set()
    assert found >= NOT_KEYS, "NOT_KEYS lists a string that is gone: remove it"
