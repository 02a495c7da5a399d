"""What ``pipeline-bot run`` imports before it starts: not the parts a running bot may never use.

Each module a process imports stays in its RSS for good (docs/PERFORMANCE.md, "Seventh pass (memory)"): SQLAlchemy's
PostgreSQL dialect (about 2.3 MB) on a bot on SQLite, Socket Mode's modules on a bot served over HTTP, cryptography
(6.6 MB) for Tailer connections without a service-account key. Each is imported at start-up when it is used (the
engine loads its own dialect, ``build`` the Socket Mode handler, the catalog's load a service-account key), so a
broken install still fails before the bot serves. Checked in a fresh interpreter: this process has imported
everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import Column, Integer, MetaData, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.upsert import upsert_insert

LAZY = (
    "sqlalchemy.dialects.postgresql",
    "sqlalchemy.dialects.sqlite",
    "slack_sdk.socket_mode",
    "slack_bolt.adapter.socket_mode",
    "bot.slack.socket_mode",
    "cryptography",
)


def _imported_by_run() -> set[str]:
    """The modules loaded once ``python -m bot run`` has imported ``bot.cli`` and ``bot.runtime``, and every
    provider's modules (as a catalog naming all four has them imported)."""
    code = (
        "import json, sys; import bot.cli, bot.runtime; from bot.providers.registry import PROVIDERS, provider; "
        "[provider(key) for key in PROVIDERS]; print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(done.stdout))


def test_run_imports_no_database_dialect_nor_socket_mode_nor_cryptography_before_it_starts() -> None:
    imported = _imported_by_run()
    # the check itself saw the imports
    assert {"bot.runtime", "sqlalchemy.ext.asyncio", "bot.providers.tailer.auth"} <= imported
    loaded = sorted(m for m in imported if any(m == lazy or m.startswith(lazy + ".") for lazy in LAZY))
    assert loaded == []


@pytest.mark.parametrize(
    ("url", "insert", "statement"),
    [("sqlite+aiosqlite://", sqlite.insert, sqlite.Insert),
     ("postgresql+asyncpg://bot@db.invalid/bot", postgresql.insert, postgresql.Insert)],
)
def test_the_upsert_is_the_databases_own(url: str, insert: object, statement: type) -> None:
    engine = create_async_engine(url)  # no connection is made: the engine's dialect says which
    assert upsert_insert(engine) is insert
    assert isinstance(upsert_insert(engine)(Table("t", MetaData(), Column("id", Integer))), statement)
