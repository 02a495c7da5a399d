"""One process per SQLite file, whatever name the second one reaches the file by (second independent pass)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.errors import StartupError
from bot.store.lock import ProcessLock, lock_path


def held(database: Path) -> ProcessLock:
    lock = ProcessLock(database)
    lock.acquire()
    return lock


def test_a_hard_link_to_the_database_is_the_same_database(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    db.write_bytes(b"")
    first = held(db)
    try:
        os.link(db, tmp_path / "other.db")
        with pytest.raises(StartupError, match="another pipeline-bot is running"):
            held(tmp_path / "other.db")
    finally:
        first.release()


def test_a_deleted_lock_file_does_not_let_a_second_process_in(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    first = held(db)
    try:
        lock_path(db.resolve()).unlink()
        with pytest.raises(StartupError, match="another pipeline-bot is running"):
            held(db)
    finally:
        first.release()
    held(db).release()  # once the first is gone, the file is free again


def test_a_symlink_at_the_lock_files_name_is_refused_and_its_target_left_alone(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    lock_path((tmp_path / "bot.db").resolve()).symlink_to(victim)
    with pytest.raises(StartupError, match="a symbolic link"):
        held(tmp_path / "bot.db")
    assert victim.read_text() == "precious\n"
