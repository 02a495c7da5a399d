"""A stopped run's reason names its connection as written: a very long name stays one closed span once the note
is cut at 400 characters (a cut through the span left a lone backtick and the name's marks read as formatting)."""

import pytest

from bot.ops.text import named_within
from bot.service.events import StoppedFollowing
from bot.slack.reporter import note_text
from bot.slack.text import truncate
from bot.store.records import GONE_FROM_CATALOG


@pytest.mark.parametrize("name", ["*" * 450, "a" * 390 + "_", "~x" * 300, "`" * 500])
def test_long_name_keeps_its_code_span_closed(name: str) -> None:
    why = GONE_FROM_CATALOG.format(connection=name)
    said = truncate(named_within(why, name), 400, "…")
    assert said.count("`") % 2 == 0
    assert said.endswith("is no longer in the bot's catalog (pipelines.yml)")
    note = note_text(StoppedFollowing("U1", name, why))
    assert note.count("`") % 2 == 0


@pytest.mark.parametrize("name", ["eu*prod", "<!channel>", "<@U1>", "a&b", "p\nq", "_x_", "`x`"])
def test_hostile_short_names_stay_inert(name: str) -> None:
    said = named_within(GONE_FROM_CATALOG.format(connection=name), name)
    assert "<" not in said and ">" not in said and "\n" not in said
    assert said.count("`") in (0, 2)
