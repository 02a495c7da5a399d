"""One process per SQLite file: an OS lock on a file beside the database, held while the process lives.

SQLite is for one process: at start the bot hands back every lease it finds in the file, as they can only
belong to a process that died. A second process on the same file would take the first one's work, so it
must not start. ``flock`` is released by the kernel when the holder exits in any way, SIGKILL included,
so a new process can start at once after a crash. The lock file is left in place: removing it would let
two processes lock two different files of the same name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from pathlib import Path

from bot.errors import StartupError

__all__ = ["ProcessLock", "lock_path"]


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class ProcessLock:
    """``acquire`` takes the lock of a SQLite file or raises StartupError naming the holder's pid."""

    def __init__(self, database: Path) -> None:
        self.database = database.resolve()
        self.path = lock_path(self.database)
        self._fd: int | None = None
        self._db_fd: int | None = None

    def acquire(self) -> None:
        # the lock file beside the database, and the database file itself: a hard link to the database or a
        # deleted lock file would give a second process a lock file of its own, never the same inode
        fd = self._lock(self.path, pid_file=True)
        try:
            self._db_fd = self._lock(self.database, pid_file=False)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _lock(self, path: Path, *, pid_file: bool) -> int:
        try:
            # O_NOFOLLOW: a symlink planted at the lock's name must not make us truncate the file it points to
            # the database only read: flock needs no more, and a read-only file is said by its first write
            mode = os.O_RDWR if pid_file else os.O_RDONLY
            fd = os.open(path, mode | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            link = " (a symbolic link: use the file's real path)" if exc.errno == errno.ELOOP else ""
            raise StartupError(f"cannot open {path} to lock it: {exc.strerror}{link}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise StartupError(f"{path} is not a regular file; remove it or correct DATABASE_URL")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = (os.pread(fd, 32, 0).decode("ascii", "replace").strip() if pid_file else "") or "unknown"
            os.close(fd)
            raise StartupError(
                f"another pipeline-bot is running on {self.database} (pid {holder}); "
                "use PostgreSQL to run several"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StartupError(f"cannot lock {path}: {exc.strerror}") from None
        return fd

    def release(self) -> None:
        # after the store is closed: closing a descriptor of the database drops SQLite's own locks in this process
        for fd in (self._fd, self._db_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)  # closing the last descriptor releases the lock
        self._fd = self._db_fd = None
