"""The watch cycle's first sight of a pipeline the catalog watches, racing a person's ``/pipeline watch X #channel``
(forced interleaving on a real SQLite file): the cycle read "no watch yet", the command's row was written, then the
cycle's write replaced it: the channel the person was told alerts go to was gone, the alerts went to the pipeline's
own channel, and the audit said the bot had set it."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot.store.engine import make_engine, migrate
from bot.store.store import Store

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


async def test_a_persons_watch_written_while_the_cycle_first_sees_the_pipeline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    store = Store(engine)
    done: list[bool] = []  # the person's command: [True] landed in the cycle's window, [False] had to wait

    def command_lands(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        """As soon as the cycle's first statement on the watches ran, the person's command writes its row: at once,
        or, when the cycle's transaction holds the file's write lock, after it (as a command would wait)."""
        if done or "watches" not in statement:
            return
        try:
            with sqlite3.connect(path, timeout=0) as other:
                other.execute(
                    "INSERT INTO watches (pipeline, enabled, channel, since, updated_by, updated_at)"
                    " VALUES ('iowa-pda', 1, 'C0ALERTS', ?, 'U0ALICE', ?)",
                    (NOW.replace(tzinfo=None).isoformat(sep=" "), NOW.replace(tzinfo=None).isoformat(sep=" ")),
                )
            done.append(True)
        except sqlite3.OperationalError as exc:  # only "locked" means the cycle holds the write lock
            done.append(False if "locked" in str(exc) else bool(exc))

    event.listen(engine.sync_engine, "after_cursor_execute", command_lands)
    try:
        await store.alerting.start_watching("iowa-pda", now=NOW)  # the cycle: watched by the catalog, first seen
        event.remove(engine.sync_engine, "after_cursor_execute", command_lands)
        if done == [False]:  # the command waited for the cycle's write
            await store.alerting.set_watch("iowa-pda", enabled=True, channel="C0ALERTS", user_id="U0ALICE", now=NOW)
        assert done, "the cycle never touched the watches"
        kept = (await store.alerting.watches())["iowa-pda"]
        assert kept.channel == "C0ALERTS" and kept.updated_by == "U0ALICE", (done, kept)
    finally:
        await store.close()
