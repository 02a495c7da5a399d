"""``pipeline-bot run`` that says where its memory is: ``python -m bench.memory_bot REPORT [trace] -- run ...``.

The bot runs as ``python -m bot`` does (``bot.cli.main``, the same imports, event loop and start); this module
imports nothing but the standard library before it, so the figures are the bot's. It writes ``REPORT`` (JSON):
RSS of the bare interpreter, after the imports of ``pipeline-bot run`` (``bot.cli`` and ``bot.runtime``), after the
start, and when the bot is asked to stop (before it stops: the steady state a benchmark's window measured). Each
snapshot but the first two also has glibc's heap (``mallinfo2``), pymalloc's arenas, the objects the collector
tracks by type and the asyncio tasks by name. With ``trace``, tracemalloc runs from the end of the start: the last
snapshot then has the top allocations made since, by line and by file, i.e. what the polls keep (tracemalloc's own
bookkeeping inflates that run's RSS: compare RSS across runs without it).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import os
import re
import sys
import tempfile
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

MB = 1024 * 1024


def proc_status() -> dict[str, float]:
    """The memory lines of /proc/self/status, MB."""
    found: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            found[key] = round(int(value.split()[0]) / 1024, 1)
    return found


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    return libc


def glibc_heap() -> dict[str, float]:
    """glibc's heap, MB: ``arena`` (its main and thread arenas), of it ``in_use`` and ``free``; ``mmapped`` (large
    blocks). pymalloc's own arenas (256 KB each) are mmapped by Python, in neither. Empty without glibc."""
    libc = _libc()
    if libc is None:
        return {}
    info = libc.mallinfo2()
    return {
        "arena": round(info.arena / MB, 1),
        "in_use": round(info.uordblks / MB, 1),
        "free": round(info.fordblks / MB, 1),
        "mmapped": round(info.hblkhd / MB, 1),
    }


def pymalloc() -> dict[str, float]:
    """pymalloc's arenas (``sys._debugmallocstats``, which writes to the C stderr): how many, and the MB in
    used blocks, free blocks and free pools."""
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    wanted = {
        "arenas allocated current": "arenas",
        "bytes in allocated blocks": "used_mb",
        "bytes in available blocks": "free_blocks_mb",
        "bytes lost to pool headers": "pool_headers_mb",
        "unused pools": "free_pools_mb",
        "Total": "total_mb",
    }
    found: dict[str, float] = {}
    for line in text.splitlines():
        label, _, value = line.rpartition("=")
        for key, name in wanted.items():
            if key in label and name not in found:
                number = int(re.sub(r"[^0-9]", "", value) or 0)
                found[name] = number if name == "arenas" else round(number / MB, 1)
    return found


def snapshot(tracing: bool = False) -> dict[str, Any]:
    report: dict[str, Any] = {"proc": proc_status(), "glibc": glibc_heap(), "pymalloc": pymalloc()}
    objects = gc.get_objects()
    report["gc_objects"] = len(objects)
    report["gc_types"] = Counter(type(o).__qualname__ for o in objects).most_common(30)
    del objects
    try:
        tasks = asyncio.all_tasks()
    except RuntimeError:
        tasks = set()
    report["tasks"] = len(tasks)
    report["task_names"] = Counter(" ".join(t.get_name().split()[:2]) for t in tasks).most_common(10)
    if tracing and tracemalloc.is_tracing():
        taken = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        report["traced_mb"] = round(sum(s.size for s in taken.statistics("filename")) / MB, 1)
        report["traced_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / MB, 1)
        report["tracemalloc_own_mb"] = round(tracemalloc.get_tracemalloc_memory() / MB, 1)
        report["top_lines"] = [
            [f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}", round(s.size / 1024, 1), s.count]
            for s in taken.statistics("lineno")[:40]
        ]
        report["top_files"] = [
            [_short(s.traceback[0].filename), round(s.size / 1024, 1), s.count]
            for s in taken.statistics("filename")[:25]
        ]
    return report


def _short(filename: str) -> str:
    return filename.split("site-packages/")[-1].split("/perf16m/")[-1]


def main(argv: list[str]) -> int:
    if len(argv) < 2 or "--" not in argv:
        print("usage: python -m bench.memory_bot REPORT [trace] -- run [--env-file FILE]", file=sys.stderr)
        return 2
    cut = argv.index("--")
    out, tracing, bot_argv = Path(argv[0]), "trace" in argv[1:cut], argv[cut + 1 :]
    report: dict[str, Any] = {"tracing": tracing, "interpreter": proc_status()}
    import bot.cli
    from bot.runtime import Runtime

    report["imported"] = proc_status()
    report["modules"] = len(sys.modules)
    imported = set(sys.modules)
    start, stop = Runtime.start, Runtime.stop

    async def watch_peak() -> None:
        """The top lines when the memory traced is the most yet (checked every 3 s; 2 MB more than the last)."""
        most = 0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(3.0)
            now = tracemalloc.get_traced_memory()[0]
            if now > most + 2 * MB:
                most = now
                taken = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
                report["at_peak"] = {
                    "traced_mb": round(now / MB, 1),
                    "seconds_after_start": round(loop.time() - began, 1),
                    "proc": proc_status(),
                    "top_lines": [
                        [f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}", round(s.size / 1024, 1), s.count]
                        for s in taken.statistics("lineno")[:30]
                    ],
                }
                del taken

    began = 0.0
    watching: list[asyncio.Task[None]] = []

    async def started(self: Runtime) -> None:
        nonlocal began
        await start(self)
        report["started"] = snapshot()
        # what the start imported on first use, by top-level package (the bot's own by package)
        report["started"]["modules_imported"] = Counter(
            ".".join(name.split(".")[:2]) if name.startswith("bot.") else name.split(".")[0]
            for name in set(sys.modules) - imported
        ).most_common()
        if tracing:
            tracemalloc.start()
            began = asyncio.get_running_loop().time()
            watching.append(asyncio.create_task(watch_peak()))

    async def stopping(self: Runtime) -> None:
        if "end" not in report and "started" in report:
            for task in watching:
                task.cancel()
            report["end"] = snapshot(tracing)
            tracemalloc.stop()
            libc = _libc()
            if libc is not None:  # what glibc holds free and could give back (the report is written: no harm)
                libc.malloc_trim(0)
                report["after_malloc_trim"] = proc_status()
            out.write_text(json.dumps(report, indent=1))  # noqa: ASYNC240 - once, as the bot stops
        await stop(self)

    import bot.runtime as runtime_module

    trim = getattr(runtime_module, "trim_heap", None)
    if trim is not None:  # each of the runtime's heap trims, with the RSS before and after (MB)
        trims: list[list[float]] = report.setdefault("trims", [])

        async def counted() -> bool:
            before = proc_status().get("VmRSS", 0.0)
            done = bool(await trim())
            trims.append([before, proc_status().get("VmRSS", 0.0)])
            return done

        runtime_module.trim_heap = counted  # type: ignore[attr-defined]
    Runtime.start = started  # type: ignore[method-assign]
    Runtime.stop = stopping  # type: ignore[method-assign]
    return bot.cli.main(bot_argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
