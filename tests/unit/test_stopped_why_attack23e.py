"""Twenty-third pass (e): a run stopped following says why in the words kept at the stop (``stopped_why``), which
name its connection: a free YAML key. Escaped only, a name Slack reads formatting in (``*``, ``_``, ``~``, a
backquote) showed as other words (``db*prod*`` as "db" and a bold "prod") where every other refusal and note shows it
as written (``named``)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from bot.ops.text import named
from bot.service.clients import ClientPool
from bot.service.events import StoppedFollowing
from bot.slack.blocks.card import stopped_following
from bot.slack.reporter import note_text

NAME = "db*prod*_eu_"


def _why() -> str:
    return ClientPool({}).why_gone(NAME, "tailer")


def test_the_thread_note_shows_the_connection_as_written() -> None:
    text = note_text(StoppedFollowing("U0ALICE", NAME, _why()))
    assert named(NAME) in text, text


def test_the_card_shows_the_connection_as_written() -> None:
    run = SimpleNamespace(stopped_by="U0ALICE", stopped_why=_why(), connection=NAME)
    text = stopped_following(cast(Any, run), "Tailer")
    assert named(NAME) in text, text


def test_a_why_without_the_name_is_escaped_as_before() -> None:
    text = note_text(StoppedFollowing("U0ALICE", NAME, "<!channel> went"))
    assert "&lt;!channel&gt; went" in text, text
