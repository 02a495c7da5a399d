"""An order run's details: its nodes as tasks, its log's last lines, why it failed (pure functions)."""

from __future__ import annotations

import base64
import binascii
import io
import itertools
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import NamedTuple

from bot.models import JsonValue, RunLog, RunLogPage, RunState, TaskStatus
from bot.providers.base import LOG_KEEP_LINES
from bot.providers.datakitchen.answers import _MESSAGE_LIMIT, _cut, _words, node_state

#: of an order run's log, the characters and lines read from its end (where the failure is); each line is redacted
#: and searched for node names, on the event loop
_LOG_KEEP = 1024 * 1024
_LOG_KEEP_LINES = 5000
#: the most a compressed log is inflated to, a piece of ``_INFLATE_STEP`` at a time (a few tens of milliseconds)
_LOG_INFLATE = 32 * 1024 * 1024
_INFLATE_STEP = 256 * 1024


def _tasks_of(
    detail: Mapping[str, JsonValue], lines: Sequence[_Line] = (), redact: Callable[[str], str] = str
) -> tuple[TaskStatus, ...]:
    """Nodes from ``summary.nodes`` (or, in older answers, the dict entries of ``summary`` itself).

    A failed node without words of its own gets the log lines that name it (``lines`` come redacted; a node's
    own words are redacted here before they are cut).
    """
    summary = detail.get("summary")
    if not isinstance(summary, dict):
        return ()
    nodes = summary.get("nodes") if isinstance(summary.get("nodes"), dict) else summary
    assert isinstance(nodes, dict)
    tasks = []
    for name, info in nodes.items():
        if not isinstance(info, dict) or "status" not in info:
            continue
        raw = str(info.get("status") or "")
        message = _cut(redact(_words(info.get("error") or info.get("message"))), _MESSAGE_LIMIT)
        state = node_state(raw)
        if state is RunState.FAILED and not message:
            message = "\n".join(line.text for line in lines if line.about(str(name)))[-500:]
        tasks.append(TaskStatus(name=str(name), state=state, raw_status=raw, message=message))
    return tuple(tasks)


class _Line(NamedTuple):
    """One log line of an order run, and the node it is about when the log says so."""

    text: str
    node: str = ""

    def about(self, node: str) -> bool:
        return self.node == node if self.node else node in self.text


def _log_lines(detail: Mapping[str, JsonValue], keep: int = _LOG_KEEP_LINES) -> list[_Line]:
    """Log lines of a details answer: its last ``_LOG_KEEP_LINES`` lines and ``_LOG_KEEP`` characters at most,
    where a run's failure is told.

    DataKitchen's shape: ``log: {lines: [{record_type, node, message, …}]}`` (DKCloudCommand's
    orderrun_detail prints these entries, DKUtils' OrderRunMonitor reads ``record_type``, ``node`` and
    ``message``). A list of lines or entries, plain text or base64 zlib text are read too (assumption).
    """
    return _read_log(detail, keep)[0]


def _read_log(detail: Mapping[str, JsonValue], keep: int) -> tuple[list[_Line], bool]:
    """``_log_lines``, and whether it left lines out (the log is longer than ``keep`` lines or ``_LOG_KEEP``
    characters)."""
    raw = detail.get("log", detail.get("logs"))
    if isinstance(raw, dict) and isinstance(raw.get("lines"), list):
        raw = raw["lines"]
    if isinstance(raw, list):
        read = [line for line in (_entry_line(e) for e in raw[-keep:]) if line.text]
        kept = _tail(read, keep)
        return kept, len(raw) > keep or len(kept) < len(read)
    if isinstance(raw, str):
        text = _maybe_compressed(raw)
        read = [_Line(line.strip()) for line in text[-_LOG_KEEP:].splitlines()[-keep:] if line.strip()]
        kept = _tail(read, keep)
        return kept, len(text) >= _LOG_KEEP or len(kept) < len(read) or text.count("\n") >= keep
    return [], False


def _tail(lines: list[_Line], keep: int = _LOG_KEEP_LINES) -> list[_Line]:
    """The last lines, ``keep`` and ``_LOG_KEEP`` characters of them at most: each is redacted and
    searched, and the end of a log is what says why a run failed."""
    lines = lines[-keep:]
    kept = 0
    for at in range(len(lines) - 1, -1, -1):
        kept += len(lines[at].text)
        if kept > _LOG_KEEP:
            return lines[at + 1 :]
    return lines


def _entry_line(entry: JsonValue) -> _Line:
    if isinstance(entry, str):
        return _Line(entry.strip())
    if isinstance(entry, dict) and "message" in entry:
        level = entry.get("record_type")
        text = _words(entry.get("message"))
        node = entry.get("node")
        return _Line(f"{level} {text}" if isinstance(level, str) and text else text,
                     node if isinstance(node, str) else "")
    return _Line(_words(entry))


def _maybe_compressed(text: str) -> str:
    """DKCloudCommand decompresses logs (base64 of zlib); plain text passes through.

    Inflated a piece at a time, at most ``_LOG_INFLATE`` bytes, keeping the last ``_LOG_KEEP``: 10 MB of zlib can
    become 10 GB (1.4 MB of it grew the process by 2 GB and held the event loop for a minute). A log longer than
    that once inflated ends with a line saying where the bot stopped reading it."""
    try:
        data = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return text
    inflater = zlib.decompressobj()
    kept = bytearray()
    inflated = 0
    try:
        while not inflater.eof and inflated < _LOG_INFLATE:
            piece = inflater.decompress(data, _INFLATE_STEP)
            data = inflater.unconsumed_tail
            if not piece:
                break  # no input left before the end of the stream
            inflated += len(piece)
            kept += piece
            del kept[: max(0, len(kept) - _LOG_KEEP)]
    except zlib.error:
        return text
    if not inflater.eof and inflated < _LOG_INFLATE:
        return text  # cut short: not a compressed log after all (zlib.decompress would refuse it too)
    shown = kept.decode("utf-8", "replace")
    if not inflater.eof:
        shown += (
            f"\n(the log goes on past {_LOG_INFLATE // 2**20} MB once decompressed; the bot read no further: "
            "see the order run in DataKitchen)"
        )
    return shown


def _failure_message(
    tasks: tuple[TaskStatus, ...],
    log: list[_Line],
    detail: Mapping[str, JsonValue],
    fallback: str,
    redact: Callable[[str], str] = str,
) -> str:
    """Which nodes failed and what the log says about it (``lines`` come redacted; the rest is redacted here,
    before the message is cut)."""
    failed = [t.name for t in tasks if t.state is RunState.FAILED]
    lines = [line.text for line in log]
    errors = [line for line in lines if any(w in line.lower() for w in ("error", "fail", "exception"))]
    parts = []
    if failed:
        parts.append(f"Failed node{'s' if len(failed) > 1 else ''}: {', '.join(failed)}.")
    said = redact(_words(detail.get("error"))) or "\n".join((errors or lines)[-5:])
    if said:
        parts.append(said)
    message = "\n".join(parts) or fallback or "The order run failed; DataKitchen gave no reason."
    return _cut(message, _MESSAGE_LIMIT)


def log_of(detail: Mapping[str, JsonValue], redact: Callable[[str], str], hid: str) -> RunLog:
    """An order run's whole log for the failure's thread and its Full log: the entries of ``log.lines`` (the
    details DKCloudCommand's ``orderrun_detail`` asks for), each ``record_type message``, its node named, redacted."""
    lines, cut = _read_log(detail, LOG_KEEP_LINES)
    texts = [redact(f"[{line.node}] {line.text}" if line.node else line.text) for line in lines]
    # DKCloudCommandRunner.orderrun_detail prints ``testresults`` as text after the log ("TEST RESULTS")
    tests = detail.get("testresults")
    if isinstance(tests, str) and tests.strip():
        texts += ["TEST RESULTS"] + [redact(line.rstrip()) for line in tests.splitlines() if line.strip()]
    source = f"DataKitchen POST v2/order/details ({hid}: summary, logs, testresults)"
    return RunLog(tuple(texts[-LOG_KEEP_LINES:]), source, cut or len(texts) > LOG_KEEP_LINES)


def export_page(encoded: str, page: int, size: int, redact: Callable[[str], str], hid: str) -> RunLogPage:
    """Page ``page`` from the end (``size`` lines, clamped to the pages there are) of an order run's whole log as
    ``GET v2/order/export/logs`` gives it: base64 of a zip whose first file is the log's text (DKCloudCommand's
    ``orderrun_detail(full_log=True)``: ``DKFileEncode.b64decode``, ``DKZipHelper.unzip_first_file_as_string_or_
    unicode``). Read as a stream twice, to count its lines and to take the page's (each redacted), never held
    whole, and no further than ``_LOG_INFLATE`` bytes once inflated (a longer log's pages end there). Blocking: run
    it in a thread. Raises ``ValueError`` for an answer of another shape."""
    try:
        data = base64.b64decode(encoded, validate=True)
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (binascii.Error, zipfile.BadZipFile) as exc:
        raise ValueError(f"not base64 of a zip: {exc}") from exc
    if not members:
        raise ValueError("a zip with no file")

    def lines() -> Iterator[str]:
        read = 0
        with archive.open(members[0]) as raw:
            for line in io.TextIOWrapper(raw, encoding="utf-8", errors="replace"):
                read += len(line)
                if read > _LOG_INFLATE:
                    return
                if line.strip():
                    yield line.rstrip()

    total = sum(1 for _ in lines())
    pages = max(1, -(-total // size))
    page = min(max(page, 0), pages - 1)
    end = total - page * size
    start = max(0, end - size)
    shown = tuple(redact(line) for line in itertools.islice(lines(), start, end))
    source = f"DataKitchen GET v2/order/export/logs ({hid})"
    return RunLogPage(lines=shown, first=start + 1, total=total, page=page, pages=pages, source=source)
