"""Which errors mean "the database is away for now" (a restart, a failover, a connection cut) rather than a fault
of the bot's own SQL: the first are worth waiting out and retrying quietly, the second are bugs to show at once.

PostgreSQL refusing connections (asyncpg) reaches SQLAlchemy as a bare ``DBAPIError``; a connection cut mid-query
as one marked ``connection_invalidated``; SQLite's busy file as an ``OperationalError``. A statement the database
rejects for what it says (``ProgrammingError``, ``IntegrityError``, ``DataError``, ``NotSupportedError``) is the
bot's, and so is anything that is not a database error at all."""

from __future__ import annotations

from sqlalchemy import exc

__all__ = ["database_away"]

#: errors about the statement itself: retrying the same statement gives the same answer
_THE_STATEMENTS = (exc.ProgrammingError, exc.IntegrityError, exc.DataError, exc.NotSupportedError)


def database_away(error: BaseException) -> bool:
    """True when ``error`` says the database could not be reached or lost the connection (retrying may work)."""
    if isinstance(error, BaseExceptionGroup):
        return all(database_away(e) for e in error.exceptions)
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or not isinstance(error, _THE_STATEMENTS)
    # the pool waiting for a connection in vain; a connection refused before the driver wrapped it
    return isinstance(error, (exc.TimeoutError, exc.DisconnectionError, ConnectionError))
