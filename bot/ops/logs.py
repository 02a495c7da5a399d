"""Logging: JSON lines in production, readable text on a terminal. Run ids ride on records as ``run_id``.

Every record passes ``RedactingFilter`` on its way out: no secret of the running bot, in any of its wire forms,
reaches a log line, whichever library logged it and at whatever level.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from bot.ops.redact import RedactingFilter

__all__ = ["LIBRARIES", "ContextFilter", "JsonFormatter", "run_context", "setup_logging"]

_EXTRA = ("run_id", "pipeline", "provider", "connection")
_context: ContextVar[dict[str, object] | None] = ContextVar("pipeline_bot_log_context", default=None)


@contextmanager
def run_context(
    run_id: object = None, *, pipeline: str | None = None, provider: str | None = None, connection: str | None = None
) -> Iterator[None]:
    """Every log line inside (ours and the libraries') carries the run it is about."""
    values = {
        k: v
        for k, v in (("run_id", run_id), ("pipeline", pipeline), ("provider", provider), ("connection", connection))
        if v is not None
    }
    token = _context.set({**(_context.get() or {}), **values})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRA:
            if hasattr(record, key):
                line[key] = getattr(record, key)
        # exc_text first: RedactingFilter leaves the traceback there, redacted
        error = record.exc_text or (self.formatException(record.exc_info) if record.exc_info else "")
        if error:
            line["error"] = error
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal, with the run a line is about at the end."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        about = " ".join(f"{k}={getattr(record, k)}" for k in _EXTRA if hasattr(record, k))
        return f"{line} [{about}]" if about else line


#: libraries whose loggers speak for every query, request or tick: at DEBUG, aiosqlite alone was 99 % of the lines.
#: ``bot.slack.bolt`` is Bolt's own logger under our name (``bot/slack/app.py`` hands it to the app, and the Socket
#: Mode handler passes the app's logger on to its client): every request, listener and envelope at DEBUG
LIBRARIES = (
    "bot.slack.bolt",
    "aiosqlite",
    "asyncio",
    "sqlalchemy",
    "alembic",
    "asyncpg",
    "httpx",
    "httpcore",
    "hpack",
    "h11",
    "aiohttp",
    "websockets",
    "apscheduler",
    "slack_bolt",
    "slack_sdk",
    "tzlocal",
)


def setup_logging(level: str = "INFO", fmt: str = "auto", libraries: str = "WARNING") -> None:
    """``level`` for the bot's own lines; the libraries' loggers get the higher of ``level`` and ``libraries``."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if use_json else TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet = max(logging.getLevelName(libraries), root.level)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(quiet)
    # HTTP/2's header coding prints every header it sends and receives at DEBUG, Authorization included:
    # never below WARNING, whatever LIBRARY_LOG_LEVEL says
    for headers in ("hpack", "h2"):
        logging.getLogger(headers).setLevel(max(logging.WARNING, quiet))
