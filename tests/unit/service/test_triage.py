"""The failure's evidence is read once, a bug reading it is logged and said once; a database away is raised (the
next sweep reads it again)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy.exc import DBAPIError

from bot.models import RunLog
from bot.service.evidence import Evidence
from bot.service.triage import Triage
from bot.store import keys
from bot.store.records import RunOrigin, RunRecord, StoredState

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def failed(run_id: int = 7, provider_run_id: str | None = "r-7") -> RunRecord:
    return RunRecord(
        id=run_id, pipeline="orders", provider="rivery", connection="rivery", job={"river_id": "x"}, parameters={},
        provider_run_id=provider_run_id, state=StoredState.FAILED, raw_status="E", message="", warning="", tasks=(),
        extra={}, final=True, origin=RunOrigin.SLACK, started_by=None, channel="C1", retry_of=None, attempt=1,
        created_at=T0, updated_at=T0, started_at=T0, ended_at=T0, next_poll_at=None, polls=0,
        unknown_since=None, last_error="", acknowledged_by=None, acknowledged_at=None,
    )


@dataclass
class Fakes:
    """The store, pool and reporter Triage talks to: what it was told, and what the client does."""

    log: RunLog | BaseException = field(default_factory=lambda: RunLog(("ERROR x",), "GET logs"))
    written: set[str] = field(default_factory=set)
    told: list[Evidence] = field(default_factory=list)
    asked: int = 0

    # the store
    @property
    def outbox(self) -> Fakes:
        return self

    @property
    def runs(self) -> Fakes:
        return self

    async def written_at(self, key: str) -> datetime | None:
        return T0 if key in self.written else None

    async def recent(self, pipeline: str, limit: int = 10) -> list[RunRecord]:
        return []

    # the pool and its client
    display_name = "Rivery"

    def client(self, connection: str, provider_key: str | None = None) -> Fakes:
        return self

    def job(self, provider: str, job: Any) -> Any:
        return job

    def can(self, capability: Any) -> bool:
        return False

    async def run_log(self, job: Any, run_id: str) -> RunLog:
        self.asked += 1
        if isinstance(self.log, BaseException):
            raise self.log
        return self.log

    # the reporter
    async def run_evidence(self, run: RunRecord, evidence: Evidence, *, thread: str | None = None) -> None:
        self.told.append(evidence)
        self.written.add(keys.run_evidence(run.id))


def triage(fakes: Fakes) -> Triage:
    return Triage(cast(Any, fakes), cast(Any, fakes), cast(Any, fakes), lambda: T0)


async def test_the_evidence_is_read_and_told_once() -> None:
    fakes = Fakes()
    await triage(fakes).failed(failed())
    await triage(fakes).failed(failed())  # recovery hands the same failure over again
    assert fakes.asked == 1 and len(fakes.told) == 1
    assert fakes.told[0].lines == ("ERROR x",) and fakes.told[0].source == "GET logs"


async def test_a_run_that_never_started_has_nothing_to_read() -> None:
    fakes = Fakes()
    await triage(fakes).failed(failed(provider_run_id=None))
    assert fakes.asked == 0 and not fakes.told


async def test_a_bug_reading_the_log_is_logged_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    fakes = Fakes(log=KeyError("an answer of another shape"))
    await triage(fakes).failed(failed())
    assert "reading the evidence of run 7 failed" in caplog.text
    # said once in the thread, so that the sweep does not read it again at each tick
    [said] = fakes.told
    assert said.missing.startswith("The bot could not read what Rivery answered") and not said.lines
    await triage(fakes).failed(failed())
    assert fakes.asked == 1


async def test_a_database_away_is_raised_to_be_handed_over_again() -> None:
    away = DBAPIError("select", {}, Exception("gone"), connection_invalidated=True)
    fakes = Fakes(log=away)
    with pytest.raises(DBAPIError):
        await triage(fakes).failed(failed())
    assert not fakes.told
