"""The database's own ``INSERT … ON CONFLICT``, its dialect imported on first use.

SQLAlchemy's PostgreSQL dialect package costs about 2.3 MB of RSS and 19 modules at import; a bot on SQLite never
needs it (and one on PostgreSQL never needs SQLite's). The engine imports its own dialect when the database is
opened at start-up, so the import here finds it loaded: nothing is deferred that could fail later (both dialects
are part of SQLAlchemy itself). ``tests/unit/test_lazy_imports.py`` pins that ``run``'s imports leave it out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["Upsert", "upsert_insert"]

#: ``postgresql.insert`` or ``sqlite.insert``: both take a table and have ``on_conflict_do_nothing``/``_update``
Upsert = Callable[[Table], "postgresql.Insert | sqlite.Insert"]


def upsert_insert(bound: AsyncEngine | AsyncConnection) -> Upsert:
    """The ``insert`` of the database ``bound`` (an engine or a connection) speaks."""
    if bound.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert
