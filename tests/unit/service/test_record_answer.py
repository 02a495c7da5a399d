"""A trigger's answer (the provider's id of the run it started) is recorded with retries while the database is away,
and only then: a bug in recording it is raised at once. Whatever stops it, the provider's run id is in the log."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError, ProgrammingError

from bot.service.starting import record_answer
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.store import Store

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
PROVIDER_RUN = "rv-7f3a9c"


async def starting_run(store: Store) -> int:
    run = await store.runs.create(
        NewRun(
            provider="rivery",
            connection="rivery",
            job={"river_id": "r1"},
            parameters={},
            origin=RunOrigin.SLACK,
            pipeline="leads-ods",
            started_by="U0ALICE",
            channel="C0ALERTS",
        ),
        now=NOW,
        next_poll_at=None,
        owner="me",
        lease=timedelta(minutes=1),
    )
    return run.id


def failing_first(monkeypatch: pytest.MonkeyPatch, store: Store, errors: list[BaseException]) -> None:
    """``store.starts.answered`` raises each of ``errors`` in turn, then records as before."""
    real: Callable[..., Awaitable[tuple[RunRecord, bool]]] = store.starts.answered

    async def answered(*args: Any, **kwargs: Any) -> tuple[RunRecord, bool]:
        if errors:
            raise errors.pop(0)
        return await real(*args, **kwargs)

    monkeypatch.setattr(store.starts, "answered", answered)


def away() -> DBAPIError:
    """What asyncpg's refusal reaches SQLAlchemy as while PostgreSQL restarts."""
    return DBAPIError("SELECT 1", {}, OSError('database "bot" is not currently accepting connections'))


async def record(store: Store, run_id: int, pauses: list[float]) -> tuple[RunRecord, bool]:
    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    return await record_answer(
        store, run_id, PROVIDER_RUN, now=lambda: NOW, first_poll=timedelta(seconds=5), sleep=sleep
    )


async def test_the_database_away_is_waited_out_and_each_warning_names_the_providers_run(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = await starting_run(sqlite_store)
    failing_first(monkeypatch, sqlite_store, [away(), away()])
    pauses: list[float] = []
    record_, _ = await record(sqlite_store, run_id, pauses)
    assert record_.provider_run_id == PROVIDER_RUN
    assert pauses == [0.25, 0.5]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all(PROVIDER_RUN in w for w in warnings), warnings


@pytest.mark.parametrize("bug", [ProgrammingError("SELECT nope", {}, Exception("syntax error")), TypeError("oops")])
async def test_a_bug_in_recording_the_answer_is_raised_at_once_with_the_providers_run_logged(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, bug: Exception
) -> None:
    """It was retried for up to 10 minutes (a WARNING every 5 s), holding the person's reply up all along."""
    run_id = await starting_run(sqlite_store)
    failing_first(monkeypatch, sqlite_store, [bug])
    pauses: list[float] = []
    with pytest.raises(type(bug)):
        await record(sqlite_store, run_id, pauses)
    assert pauses == []
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and PROVIDER_RUN in errors[0], errors


async def test_a_process_stopping_while_the_answer_waits_for_the_database_logs_the_providers_run(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recovery then gives the start up ("unknown whether it started"): the log is where its provider run is."""
    run_id = await starting_run(sqlite_store)
    failing_first(monkeypatch, sqlite_store, [away() for _ in range(100)])
    recording = asyncio.ensure_future(
        record_answer(sqlite_store, run_id, PROVIDER_RUN, now=lambda: NOW, first_poll=timedelta(seconds=5))
    )
    await asyncio.sleep(0.1)  # in its first pause
    recording.cancel()
    with pytest.raises(asyncio.CancelledError):
        await recording
    stopped = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "stopped" in r.getMessage()]
    assert len(stopped) == 1 and PROVIDER_RUN in stopped[0], stopped


async def test_a_database_that_times_out_or_does_not_resolve_during_a_failover_is_waited_out(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eleventh pass: asyncpg's connect raises these bare (tests/unit/store/test_away.py asks the real driver); the
    answer was not waited for, the start was given up by recovery though the run was at the provider."""
    run_id = await starting_run(sqlite_store)
    failing_first(monkeypatch, sqlite_store, [TimeoutError(), socket.gaierror(-3, "Temporary failure in name resolution")])
    pauses: list[float] = []
    record_, _ = await record(sqlite_store, run_id, pauses)
    assert record_.provider_run_id == PROVIDER_RUN and pauses == [0.25, 0.5]
