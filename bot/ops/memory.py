"""The process's heap, where glibc's malloc is the C allocator (Linux with glibc; elsewhere nothing here does anything).

Measured at 5,000 runs in flight (docs/PERFORMANCE.md, "Sixth pass"): after the first polls' burst glibc held about
23 MB it no longer used, in holes of its heaps. Two causes, both glibc's defaults:

- its mmap threshold is dynamic: a block freed after being mmapped (a large answer, a large result) raises the
  threshold to the block's size, so the next blocks of that size are carved from the heap, where a free one is a hole
  that cannot be given back while a small block lives above it;
- each thread allocating gets an arena of its own (up to 8 per core): aiosqlite runs each connection in a thread, and
  each of those arenas keeps its own free memory.

``tune_malloc()`` sets glibc's own settings at start-up, before any thread: a fixed mmap threshold (128 KiB, glibc's
initial value, no longer raised), the heap's top given back beyond 128 KiB free, and two arenas. An operator's own
``MALLOC_*_`` environment variables win (glibc reads them itself; each set one is left alone). ``trim_heap()`` gives
the free pages inside the heaps back (``malloc_trim``), once a minute (the runtime's ``memory`` job).
"""

from __future__ import annotations

import asyncio
import ctypes
import os

__all__ = ["trim_heap", "tune_malloc"]

# mallopt's parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

#: (mallopt parameter, value, the environment variable glibc reads for it)
SETTINGS = (
    (_M_MMAP_THRESHOLD, 128 * 1024, "MALLOC_MMAP_THRESHOLD_"),
    (_M_TRIM_THRESHOLD, 128 * 1024, "MALLOC_TRIM_THRESHOLD_"),
    (_M_ARENA_MAX, 2, "MALLOC_ARENA_MAX"),
)


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (musl and others have no such settings, or other meanings), else None."""
    try:
        libc = ctypes.CDLL(None)
        version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    return libc if version() else None


def tune_malloc(environ: dict[str, str] | None = None) -> list[str]:
    """Set glibc's malloc as the module's docstring says; returns the environment variables it set the equivalent of
    (none where the C library is not glibc, or the operator set them)."""
    libc = _glibc()
    if libc is None:
        return []
    env = os.environ if environ is None else environ
    done: list[str] = []
    for param, value, name in SETTINGS:
        if name in env:
            continue
        if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1:
            done.append(name)
    return done


async def trim_heap() -> bool:
    """``malloc_trim(0)``: the free pages inside glibc's heaps given back to the system. In a thread (it walks the
    heaps: about 20 ms for 80 MB on a slow core; ctypes lets go of the GIL meanwhile). False where not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    await asyncio.to_thread(libc.malloc_trim, ctypes.c_size_t(0))
    return True
