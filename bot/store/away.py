"""Which errors mean "the database is away for now" (a restart, a failover, a connection cut) rather than a fault
of the bot's own SQL: the first are worth waiting out and retrying quietly, the second are bugs to show at once.

PostgreSQL refusing connections (asyncpg) reaches SQLAlchemy as a bare ``DBAPIError`` or a ``ConnectionError``; a
connection cut mid-query as one marked ``connection_invalidated``; SQLite's busy file as an ``OperationalError``. A
statement the database rejects for what it says is the bot's, and so is anything that is not a database error at
all. The class SQLAlchemy gives is not enough to tell them apart: asyncpg's data errors (division by zero, a
number out of range, a value too long) arrive as bare ``DBAPIError``, and SQLite calls a syntax error or a missing
table an ``OperationalError``, as it does a locked file. So once a statement was sent, the driver's own code decides
when it gives one: PostgreSQL's SQLSTATE class, SQLite's result code; an error while connecting is the database
away whatever its code."""

from __future__ import annotations

import errno
import socket

from sqlalchemy import exc

__all__ = ["database_away"]

#: errors about the statement itself: retrying the same statement gives the same answer
_THE_STATEMENTS = (exc.ProgrammingError, exc.IntegrityError, exc.DataError, exc.NotSupportedError)
#: SQLSTATE classes of a server away or short of something for now: connection exception, transaction rollback
#: (serialization failure, deadlock: tried again, it goes), insufficient resources, operator intervention (shutting
#: down, a query canceled), system error
_PG_AWAY = frozenset({"08", "40", "53", "57", "58"})
#: single SQLSTATEs of the server away from writing for now, in a class otherwise the bot's: a read-only transaction
#: (25006: a standby answering after a failover, the database set read-only for maintenance)
_PG_AWAY_STATES = frozenset({"25006"})
#: SQLite primary result codes of a file busy, unreachable or that cannot be written for now: BUSY, LOCKED,
#: READONLY (a filesystem remounted read-only after disk errors), IOERR, FULL (the disk: PostgreSQL's 53100 is
#: away too), CANTOPEN
_SQLITE_AWAY = frozenset({5, 6, 8, 10, 13, 14})
#: a network between the bot and its server down for now (the OSErrors that are not ConnectionErrors)
_NET_AWAY = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ETIMEDOUT})


def database_away(error: BaseException) -> bool:
    """True when ``error`` says the database could not be reached or lost the connection (retrying may work)."""
    if isinstance(error, BaseExceptionGroup):
        return all(database_away(e) for e in error.exceptions)
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, _THE_STATEMENTS):
            return False
        if error.statement is None:  # no statement: connecting failed (refused, not accepting, shutting down)
            return True
        said = _drivers_code(error.orig)
        return said if said is not None else True  # no code: the connection failed under the statement
    # the pool waiting for a connection in vain; a connection refused, timed out (a server that does not answer:
    # a failover's old address, a partition) or a host name that does not resolve for now (a failover's DNS),
    # before the driver wrapped it: asyncpg raises these bare while connecting, and SQLAlchemy passes them on
    if isinstance(error, OSError):
        return isinstance(error, (ConnectionError, TimeoutError, socket.gaierror)) or error.errno in _NET_AWAY
    return isinstance(error, (exc.TimeoutError, exc.DisconnectionError))


def _drivers_code(orig: BaseException | None) -> bool | None:
    """What the driver's code says (None: it gave none): asyncpg's ``sqlstate``, sqlite3's ``sqlite_errorcode``."""
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        return sqlstate[:2] in _PG_AWAY or sqlstate in _PG_AWAY_STATES
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_AWAY
    return None
