"""glibc's malloc set for a long-lived process (``bot/ops/memory.py``): a fixed mmap threshold, two arenas, the
operator's own settings left alone; the heap's free pages given back."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from bot.ops.memory import SETTINGS, _glibc, trim_heap, tune_malloc

glibc = pytest.mark.skipif(_glibc() is None, reason="the C library is not glibc")

# a block of 1 MiB is mmapped (glibc's threshold starts at 128 KiB); freeing it raises glibc's dynamic threshold to
# 1 MiB, so blocks of 256 KiB allocated next come from the heap, where a freed one is a hole the process keeps.
# Tuned, the threshold stays put: they are mmapped, and given back whole when freed
PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from bot.ops.memory import tune_malloc
    if sys.argv[1] == "tuned":
        tune_malloc({})
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    big = libc.malloc(1 << 20)
    libc.free(big)

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc.mallinfo2.restype = MallInfo2
    before = libc.mallinfo2().hblks
    blocks = [libc.malloc(256 * 1024) for _ in range(8)]
    print(libc.mallinfo2().hblks - before)
    """
)


@glibc
def test_a_freed_large_block_no_longer_sends_the_next_large_blocks_to_the_heap() -> None:
    def mmapped(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    assert mmapped("default") == 0  # glibc's own behaviour: the threshold rose, the blocks went to the heap
    assert mmapped("tuned") == 8


@glibc
def test_each_setting_is_made_unless_the_operator_made_it() -> None:
    names = [name for _, _, name in SETTINGS]
    assert tune_malloc({}) == names
    assert tune_malloc({"MALLOC_ARENA_MAX": "8"}) == [n for n in names if n != "MALLOC_ARENA_MAX"]
    assert tune_malloc(dict.fromkeys(names, "1")) == []


@glibc
async def test_the_heap_s_free_pages_are_given_back() -> None:
    assert await trim_heap()
