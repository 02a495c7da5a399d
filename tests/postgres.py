"""The scratch PostgreSQL databases of the tests: ``bench._postgres``, shared with the benchmarks (which must not
import ``tests``), under the name the tests have always used."""

from __future__ import annotations

from bench._postgres import POSTGRES_ADMIN_URL, create_postgres_database, drop_postgres_database

__all__ = ["POSTGRES_ADMIN_URL", "create_postgres_database", "drop_postgres_database"]
