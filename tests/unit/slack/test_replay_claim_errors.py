"""A replay claim that fails for a reason of the bot's own is not "the database did not answer" (twelfth independent
pass): before, any exception was a ``LedgerUnavailable`` (a 503 with one WARNING line naming the class, the
request refused as if the database were away), so a bug in the ledger (a table missing after a bad migration, a
statement PostgreSQL refuses) refused every Slack request for good under a wrong cause and no traceback. The
database away, or not answering in time, still is ``LedgerUnavailable``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import exc, text

from bot.slack.replays import LedgerUnavailable, Replays
from bot.store.engine import make_engine, migrate
from bot.store.requests import RequestLedger

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


async def test_a_ledger_statement_the_database_refuses_is_the_bots_error_not_the_database_away(
    postgres_url: str,
) -> None:
    engine = make_engine(postgres_url)
    try:
        await migrate(engine)
        replays = Replays(RequestLedger(engine), lambda: NOW)
        assert await replays.claim("first") is not None
        async with engine.begin() as conn:
            await conn.execute(text("drop table slack_requests"))
        with pytest.raises(exc.ProgrammingError):  # an ERROR with its traceback (HTTP 500), not a quiet 503
            await replays.claim("second")
    finally:
        await engine.dispose()

    gone = make_engine(postgres_url.replace(":5432/", ":1/"))  # nothing listens there: the database away
    try:
        with pytest.raises(LedgerUnavailable):
            await Replays(RequestLedger(gone), lambda: NOW).claim("third")
    finally:
        await gone.dispose()
