"""Scratch databases on the local PostgreSQL (``TEST_POSTGRES_URL``), for the benchmarks and the tests (which
import it from here: bench never imports tests)."""

from __future__ import annotations

import os
import uuid

from bot.store.engine import make_engine

__all__ = ["POSTGRES_ADMIN_URL", "create_postgres_database", "drop_postgres_database"]

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


async def create_postgres_database(prefix: str = "bot_test") -> str:
    """A fresh database named ``prefix`` and a random suffix; returns its URL."""
    from sqlalchemy import text

    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def drop_postgres_database(url: str) -> None:
    from sqlalchemy import text

    name = url.rsplit("/", 1)[1]
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
