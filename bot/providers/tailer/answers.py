"""Reading Tailer's answers: status words, durations and dates, runs, launches, refusals (pure functions)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from bot.models import JsonValue, RunState, RunStatus

_STATES = {
    "WAITING": RunState.QUEUED,
    "RUNNING": RunState.RUNNING,
    "SUCCESS": RunState.SUCCEEDED,
    "FAILED": RunState.FAILED,
    "NO_MATCH": RunState.FAILED,
    "DEACTIVATED": RunState.CANCELED,
}
#: raw statuses outside the model that Tailer will not change any more
_FINAL_OUTSIDE = frozenset({"CHECKED"})

_MESSAGES = {
    "FAILED": "Tailer gives no failure details through its API: open the run in Tailer Studio to see the error.",
    "NO_MATCH": "No file template matched (NO_MATCH): the file that arrived matches none of the configuration's "
    "templates.",
    "CHECKED": "A failed run that someone marked as handled (CHECKED) in Tailer Studio.",
    "DEACTIVATED": "The configuration is deactivated (DEACTIVATED): enable it to run jobs again.",
}


def map_status(raw: str | None) -> RunState:
    """Tailer status → normalized state; case-insensitive, unknown values (and CHECKED) → UNKNOWN."""
    return _STATES.get((raw or "").strip().upper(), RunState.UNKNOWN)


def is_final_status(raw: str | None) -> bool:
    """Whether Tailer will not change a run with this raw status any more (terminal, or CHECKED)."""
    return map_status(raw).is_terminal or (raw or "").strip().upper() in _FINAL_OUTSIDE



_DURATION = re.compile(r"^\s*(?:(-?\d+) days?, )?(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?\s*$")


def parse_duration(text: object) -> timedelta | None:
    """Tailer's ``duration`` is Python's ``str(timedelta)``: ``0:01:24.002519``, ``1 day, 2:03:04``."""
    if not isinstance(text, str):
        return None
    found = _DURATION.match(text)
    if found is None:
        return None
    days, hours, minutes, seconds, fraction = found.groups()
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds),
        microseconds=int((fraction or "0").ljust(6, "0")),
    )


def _parse_time(text: object) -> datetime | None:
    """ISO dates as Tailer writes them (``2020-12-30T11:28:43.861340+00:00``); naive ones are UTC."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


Shown = Callable[[JsonValue], str]


def _shown(value: JsonValue) -> str:
    """A piece of an answer quoted in a message. The client passes one that redacts before it cuts."""
    return repr(str(value)[:200])


def answer_error(body: JsonValue, shown: Shown = _shown) -> str | None:
    """What is wrong with an answer, or None when it is fine.

    Tailer answers changes with ``{"message": "ok"}`` or ``{"code": 200, "data": {}, "message": "ok"}``
    and reads with ``{"results": [...]}`` or ``{"run_id": ...}``. A ``message`` other than ``ok`` (such as
    ``KO``) or a ``code`` other than 2xx means the request failed even when the HTTP status says 200.
    """
    if isinstance(body, str):
        return None if body.strip().lower() == "ok" else shown(body)
    if not isinstance(body, dict):
        return f"an unexpected answer {shown(body)}"
    code = body.get("code")
    if isinstance(code, int) and not 200 <= code < 300:
        return f"code {code}: {shown(body.get('message') or '')}"
    if "message" in body:
        message = body["message"]
        if not (isinstance(message, str) and message.strip().lower() == "ok"):
            return shown(message)
    return None


def parse_launch(body: JsonValue, shown: Shown = _shown) -> str:
    """The run id of a ``launch_job`` answer (``{"run_id": "20201230-113940-<uuid>"}``)."""
    if not isinstance(body, dict) or not isinstance(body.get("run_id"), str) or not body["run_id"].strip():
        raise ValueError(f"no run_id in {shown(body)}")
    return str(body["run_id"]).strip()


def parse_run(entry: Mapping[str, JsonValue], run_id: str = "") -> RunStatus:
    """One entry of ``results`` as a RunStatus; the raw status and Tailer's own fields are kept."""
    raw = str(entry.get("status") or "").strip()
    state = map_status(raw)
    final = is_final_status(raw)
    started = _parse_time(entry.get("start_execution_date"))
    updated = _parse_time(entry.get("last_update_date"))
    duration = parse_duration(entry.get("duration"))
    ended: datetime | None = None
    if final:
        ended = started + duration if started is not None and duration is not None else updated
    message = str(entry.get("message") or entry.get("error") or "").strip() or _MESSAGES.get(raw.upper(), "")
    if not message and state is RunState.UNKNOWN:
        message = f"Tailer reports status {raw!r}, which the bot does not know."
    extra = {
        key: str(entry[key])
        for key in ("account", "environment", "configuration_type", "configuration_id", "job_id", "last_update_date")
        if entry.get(key) not in (None, "")
    }
    return RunStatus(
        run_id=str(entry.get("run_id") or run_id),
        state=state,
        raw_status=raw,
        message=message,
        started_at=started,
        ended_at=ended,
        duration=duration,
        final=final,
        extra=extra,
    )


def parse_results(body: JsonValue, shown: Shown = _shown) -> list[RunStatus]:
    """The runs of a ``/v1/dag/status`` answer, in Tailer's order (newest first)."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ValueError(f"no results list in {shown(body)}")
    runs = []
    for entry in body["results"]:
        if not isinstance(entry, dict):
            raise ValueError(f"a result is not an object: {shown(entry)}")
        runs.append(parse_run(entry))
    return runs

