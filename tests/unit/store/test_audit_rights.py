"""The audit log's ``right_used`` column (migration 0003): entries written before it keep their rows and
read back with no right; new entries carry the right that let the action through."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bot.store.engine import make_engine, migrate
from bot.store.store import Store

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


async def test_audit_entries_from_before_the_rights_column_survive_the_migration(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await migrate(engine, "0002")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "insert into audit (at, user_id, action, target, outcome, detail) "
                "values ('2026-12-05 08:00:00.000000', 'U0ALICE', 'cancel', '#7', 'ok', '')"
            )
        )
    await migrate(engine)
    store = Store(engine)
    try:
        await store.audit.record(user_id="U0BOB", action="retry", target="#8", outcome="ok", now=NOW, right="owner")
        old, new = reversed(await store.audit.entries())
        assert (old.user_id, old.action, old.target, old.outcome, old.right) == ("U0ALICE", "cancel", "#7", "ok", None)
        assert (new.user_id, new.action, new.right) == ("U0BOB", "retry", "owner")
    finally:
        await store.close()
