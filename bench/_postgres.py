"""Scratch databases on the local PostgreSQL (``TEST_POSTGRES_URL``), for the benchmarks and the tests (which
import it from here: bench never imports tests)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from bot.store.engine import make_engine

__all__ = ["POSTGRES_ADMIN_URL", "PostgresCpu", "create_postgres_database", "drop_postgres_database"]

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


class PostgresCpu:
    """CPU seconds of the local PostgreSQL server, from /proc: every process whose comm is ``postgres``
    (postmaster, backends, background workers). A backend that ends is reaped by the postmaster, whose
    ``cutime``/``cstime`` then hold its CPU: summing utime + stime + cutime + cstime over the processes
    alive at each reading loses nothing that ended in between.

    The server is shared (other databases, other sessions on the machine): ``database_seconds`` also sums the
    backends serving one database (their process title names it), which is what the bot itself cost it.
    ``available`` is False when no such process is visible (a server on another host, or /proc hidden)."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self.proc = proc
        self._tick = os.sysconf("SC_CLK_TCK")

    def _processes(self) -> dict[int, tuple[float, float, str]]:
        """pid → (own CPU seconds, reaped children's CPU seconds, process title)."""
        found: dict[int, tuple[float, float, str]] = {}
        for entry in self.proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if (entry / "comm").read_text().strip() != "postgres":
                    continue
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            except OSError:  # ended while we read it, or not ours to read
                continue
            own = (int(fields[11]) + int(fields[12])) / self._tick  # utime, stime
            children = (int(fields[13]) + int(fields[14])) / self._tick  # cutime, cstime
            found[int(entry.name)] = (own, children, title)
        return found

    @property
    def available(self) -> bool:
        return bool(self._processes())

    def seconds(self) -> float:
        """The whole server's CPU seconds so far (ended backends included, through the postmaster)."""
        return sum(own + children for own, children, _ in self._processes().values())

    def database_seconds(self, url: str) -> dict[int, float]:
        """pid → CPU seconds of each backend serving the database of ``url``; the difference of two readings
        (``sum(after[p] - before.get(p, 0))``) leaves out only backends that ended in between (the bot keeps its
        connections in a pool)."""
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        return {pid: own for pid, (own, _, title) in self._processes().items() if f" {name} " in f" {title} "}
