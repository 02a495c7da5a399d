"""Secrets out of every text: each secret in every form it takes on the wire, and one redactor for them all.

A password travels form-encoded in a login (``p%26ss+w%25rd``), a token JSON-escaped when a provider echoes our
request inside its JSON error (``\\"``, ``\\u00e9``, and escaped twice when that error is itself quoted), a user and
password base64-encoded in Basic auth, a key percent-encoded in a query string; ``repr()`` and ``str(dict)`` escape
backslashes and quotes once more. Replacing only the literal value lets every other form through, so
``wire_forms`` lists them and a ``Redactor`` replaces them all, longest first, in one pass (hex digits of
``%XX``, ``\\uXXXX`` and ``\\xXX`` escapes in either case).

Redact BEFORE cutting a text to length: half a secret is no longer recognised. ``Redactor.excerpt`` does both in
that order.

What is not found (the limits): a secret inside a larger base64 text (base64 of a whole request body: only the
secret alone and ``user:password`` are encoded here), escaped three times or more, encrypted or hashed, or
transformed in ways no encoder uses (reversed, cut in pieces by something that re-wraps lines other than at its
own line breaks). A line break inside a secret may be followed by indentation and ``|`` (how a traceback of an
``ExceptionGroup`` prefixes its lines) and be written ``\r\n``. Values shorter than ``MIN_LENGTH`` are not
redacted alone (masking every "abc" would make a text unreadable and hide nothing): ``check`` refuses Slack and
provider secrets shorter than 8 characters, and a short database password is redacted as the ``user:password`` of
its URL.

The process keeps one ``PROCESS`` redactor that the running bot includes its redactors in; ``RedactingFilter``
uses it on every log record, whatever library wrote it: the safety net under the redaction at the source.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import logging
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from typing import TypeAlias
from urllib.parse import quote, quote_plus

__all__ = [
    "MASK",
    "MIN_LENGTH",
    "MIN_SECRET_LENGTH",
    "PROCESS",
    "RedactingFilter",
    "Redactor",
    "excerpt",
    "wire_forms",
]

MASK = "***"
#: shorter values are not redacted: masking every "abc" in a text would make it unreadable, not safer
MIN_LENGTH = 4
#: the shortest Slack token, signing secret or provider credential ``check`` accepts: no real one is shorter, and a
#: short one is not safely redacted (a 4-character secret is masked wherever those characters happen to meet)
MIN_SECRET_LENGTH = 8

Source = Callable[[], Iterable[str]]

#: escapes whose hex digits may come in either case: %2b and %2B, \u00E9 and \u00e9, \xE9 and \xe9, &#x3c; and &#X3C;
_HEX_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2}|&#[xX][0-9A-Fa-f]+;")
#: longer secrets (session tokens, keys, what a provider hands out) are searched as plain text, not by the pattern
_PATTERN_MAX = 256
#: a line break in a secret, as a log may show it: CRLF, or the next line indented and prefixed with ``|``
_LINE_BREAK = r"\r?\n[ \t|]*"
#: the characters of a URL that RFC 3986 lets through unencoded in a path or query (sub-delims, ':', '@', '/')
_URL_SAFE = "!$&'()*+,;=:@/~"


def excerpt(text: str, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters. Cuts: redact what goes in first."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- forms ------------------------------------------------------------------------------------------------------


def _json(text: str, ascii_only: bool) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)[1:-1]


def _python(text: str) -> set[str]:
    """The inside of ``repr()``, ``ascii()`` and a bytes ``repr()`` of ``text``, quotes escaped or not.

    A suffix with both quotes forces the single-quoted form (``'`` escaped); the variant with ``'`` left alone is
    the double-quoted one Python picks when the text holds only single quotes."""
    suffix = "\"'"
    found: set[str] = set()
    for shown in (repr(text + suffix)[1:-4], ascii(text + suffix)[1:-4], repr((text + suffix).encode())[2:-4]):
        found |= {shown, shown.replace("\\'", "'")}
    return found


def _urls(text: str) -> set[str]:
    """Percent-encodings: a form field or query value (``quote_plus``), a path segment (``quote``), a URL that
    keeps its reserved characters, JavaScript's ``encodeURIComponent``, Java's ``URLEncoder``; the hex case is
    left to the pattern."""
    return {
        quote_plus(text, safe=""),
        quote(text, safe=""),
        quote(text, safe="/"),
        quote(text, safe=_URL_SAFE),
        quote(text, safe="!*'()"),  # encodeURIComponent (quote keeps - _ . ~ always)
        quote_plus(text, safe="*").replace("~", "%7E"),  # java.net.URLEncoder
        quote(text, safe="!$%&'()*+,;=:@/[]\\^|"),  # a path as httpx (and WHATWG URLs) leave it
    }


def _every_byte_escaped(text: str) -> set[str]:
    """Every character escaped, even letters: each UTF-8 byte as ``%XX``, each UTF-16 unit as ``\\uXXXX``."""
    units = text.encode("utf-16-be")
    return {
        "".join(f"%{b:02X}" for b in text.encode("utf-8")),
        "".join(f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2)),
    }


def _go_json(json_form: str) -> set[str]:
    """Go's encoding/json escapes ``<``, ``>``, ``&`` as ``\\u003c``…; Gson ``=`` and ``'`` too."""
    go = json_form.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return {go, go.replace("=", "\\u003d").replace("'", "\\u0027")}


def _html(text: str, *, every: bool) -> set[str]:
    """HTML and XML escapes: named (Python, Go's ``&#34;``/``&#39;`` for quotes), and numeric character references,
    decimal or hex, for every character but letters and digits (or, ``every``, for every character)."""
    go = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    found = {
        html.escape(text, quote=True),
        html.escape(text, quote=False),
        go.replace('"', "&#34;").replace("'", "&#39;"),
        "".join(c if c.isalnum() else f"&#{ord(c)};" for c in text),
        "".join(c if c.isalnum() else f"&#x{ord(c):x};" for c in text),
    }
    return found | {"".join(f"&#{ord(c)};" for c in text)} if every else found


def _base64(text: str) -> set[str]:
    raw = text.encode("utf-8")
    found = set()
    for encoded in (base64.b64encode(raw).decode("ascii"), base64.urlsafe_b64encode(raw).decode("ascii")):
        found |= {encoded, encoded.rstrip("=")}
    return found


@functools.lru_cache(maxsize=512)
def wire_forms(secret: str) -> frozenset[str]:
    """Every form of ``secret`` to look for in a text; empty for a value shorter than ``MIN_LENGTH``.

    The value as written (stripped, and in both Unicode normal forms); JSON-escaped with and without
    ``\\uXXXX`` for non-ASCII, once and twice (a JSON body echoed inside a JSON error), with ``\\/`` too; as
    Python's ``repr``/``ascii``/bytes show it; HTML-escaped, named or numeric; percent-encoded as a form field,
    query value and path, by JavaScript and Java, as httpx leaves a path (each also of the JSON forms: a JSON
    value sent in a query string); base64, standard and URL-safe, padded or not (a token alone, or
    ``user:password`` of Basic auth, see ``Redactor.add_basic_auth``). Up to ``_PATTERN_MAX`` characters
    (passwords, keys, tokens people set) also: as Go and Gson escape ``<>&='``, with every character ``\\uXXXX``
    or every byte ``%XX``, every character an HTML reference, ``repr`` twice (the ``repr`` of an exception whose
    message holds a ``repr``), a JSON form shown by ``repr`` (a request body logged with ``%r``).
    """
    if len(secret) < MIN_LENGTH:
        return frozenset()
    # é may come back composed or as e + accent, whichever way the other side normalizes
    plain = {secret, secret.strip(), unicodedata.normalize("NFC", secret), unicodedata.normalize("NFD", secret)}
    once = {_json(p, ascii_only) for p in plain for ascii_only in (True, False)}
    jsons = once | {_json(j, ascii_only) for j in once for ascii_only in (True, False)}
    jsons |= {j.replace("/", "\\/") for j in jsons}
    short = len(secret) <= _PATTERN_MAX
    if short:
        jsons |= {go for j in once for go in _go_json(j)}
    forms = plain | jsons
    for text in plain:
        forms |= _python(text) | _html(text, every=short) | _base64(text)
        if short:
            forms |= {twice for shown in _python(text) for twice in _python(shown)} | _every_byte_escaped(text)
    if short:
        for json_form in once:  # a JSON body shown with repr(): str(dict) of a request, a bytes body logged with %r
            forms |= _python(json_form)
    for text in plain | jsons:
        forms |= _urls(text)
    return frozenset(f for f in forms if len(f) >= MIN_LENGTH)


def _atoms(form: str) -> list[str]:
    """A form as regular-expression atoms, one per character; the hex digits of its escapes in either case."""
    atoms: list[str] = []
    last = 0
    for found in _HEX_ESCAPE.finditer(form):
        atoms += [_atom(c) for c in form[last : found.start()]]
        escape = found.group()
        lead = 1 if escape.startswith("%") else 2
        atoms += [re.escape(c) for c in escape[:lead]]
        atoms += [f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in escape[lead:]]
        last = found.end()
    atoms += [_atom(c) for c in form[last:]]
    return atoms


def _atom(char: str) -> str:
    return _LINE_BREAK if char == "\n" else re.escape(char)


_END = ""
#: atom → the trie of what may follow it (``_END`` → {} where a form ends)
_Trie: TypeAlias = "dict[str, _Trie]"


def _render(node: _Trie) -> str:
    """A trie of atoms as one expression: at each fork its branches, then the empty one where a form ends, so
    the longest form that matches is the one replaced. A trie rather than an alternation of whole forms:
    matching tries one atom per branch at each place instead of every form (several times faster on the
    log lines of a busy bot)."""
    chain: list[str] = []
    while len(node) == 1 and _END not in node:  # a run without forks: plain atoms, no recursion
        (atom, node), = node.items()
        chain.append(atom)
    branches = [atom + _render(child) for atom, child in node.items() if atom != _END]
    if branches:
        chain.append("(?:" + "|".join(branches) + ("|)" if _END in node else ")"))
    return "".join(chain)


class _Matcher:
    """Replaces the forms of a set of secrets: those of short secrets through one pattern (hex digits in either
    case), those of long ones (session tokens, keys) by plain search, longest first, in both hex cases."""

    def __init__(self, pattern: re.Pattern[str] | None, literals: list[str]) -> None:
        self.pattern = pattern
        self.literals = literals

    def sub(self, text: str) -> str:
        for form in self.literals:
            if form in text:
                text = text.replace(form, MASK)
        return text if self.pattern is None else self.pattern.sub(MASK, text)


def _hex_cases(form: str) -> set[str]:
    lower = _HEX_ESCAPE.sub(lambda m: m.group().lower(), form)
    return {form, lower, _HEX_ESCAPE.sub(lambda m: m.group().upper(), form)}


@functools.lru_cache(maxsize=64)
def _compile(secrets: frozenset[str]) -> _Matcher | None:
    """A pattern costs about 10 µs to compile per character of its forms: a 2 KB token took 0.3 s, a 100 KB
    "token" a DataKitchen login answered with 22 s of a blocked event loop. Secrets longer than ``_PATTERN_MAX``
    are searched as plain text instead (forms with hex escapes in lower and upper case: enough for a token)."""
    forms = {form for secret in secrets if len(secret) <= _PATTERN_MAX for form in wire_forms(secret)}
    literals = {case for s in secrets if len(s) > _PATTERN_MAX for form in wire_forms(s) for case in _hex_cases(form)}
    if not forms and not literals:
        return None
    trie: _Trie = {}
    for form in forms:
        node = trie
        for atom in _atoms(form):
            node = node.setdefault(atom, {})
        node[_END] = {}
    return _Matcher(re.compile(_render(trie)) if forms else None, sorted(literals, key=len, reverse=True))


@functools.lru_cache(maxsize=64)
def _longest_form(secrets: frozenset[str]) -> int:
    """The length of the longest form of these secrets the redactor looks for."""
    return max((len(form) for secret in secrets for form in wire_forms(secret)), default=0)


def _form_start(text: str, length: int) -> int:
    """Where the last ``length`` characters of ``text`` begin, counted as a form's characters: a line break with
    the padding after it (``\\r\\n`` then spaces, tabs, ``|``) is one, as the pattern matches it whatever its
    length. Counted in plain characters, a padding longer than the longest form left the line before it in clear
    where ``head`` cut a secret after its padded break."""
    i, left = len(text), length
    while i > 0 and left > 0:
        j = i
        while j > 0 and text[j - 1] in " \t|":
            j -= 1
        if 0 < j < i and text[j - 1] == "\n":  # the padding of a line break: part of the break's one character
            i = j
            continue
        step = min(left, max(1, i - j))  # spaces not after a break count one by one
        i, left = i - step, left - step
        if text[i] == "\n" and i > 0 and text[i - 1] == "\r":  # CRLF: one break
            i -= 1
    return i


# -- redactor ---------------------------------------------------------------------------------------------------


class Redactor:
    """Replaces every wire form of its secrets with ``***``.

    Secrets come from ``add`` (the configuration's), from sources asked at each use (tokens a session obtains and
    renews) and from included redactors (each provider client's, in the process one). Thread-safe: log records
    are redacted from any thread.
    """

    def __init__(self, secrets: Iterable[str | None] = (), *, sources: Iterable[Source] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._sources: list[Source] = list(sources)
        self._included: list[Redactor] = []
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        with self._lock:
            self._secrets |= {s for s in secrets if s and len(s) >= MIN_LENGTH}

    def add_basic_auth(self, user: str, password: str) -> None:
        """A login's password, and ``user:password`` (base64 of it is an ``Authorization: Basic`` header)."""
        self.add(password, f"{user}:{password}")

    def add_source(self, source: Source) -> None:
        with self._lock:
            self._sources.append(source)

    def include(self, other: Redactor) -> None:
        with self._lock:
            if other is not self and other not in self._included:
                self._included.append(other)

    def exclude(self, other: Redactor) -> None:
        with self._lock:
            if other in self._included:
                self._included.remove(other)

    def secrets(self) -> frozenset[str]:
        """Every secret known now: added ones, those the sources give, and the included redactors'."""
        return frozenset(self._gather(set()))

    def _gather(self, seen: set[int]) -> set[str]:
        """Inclusions may form a cycle (a provider client's redactor includes ``PROCESS``, which includes the
        bot's, which includes the client's): each redactor is read once."""
        seen.add(id(self))
        with self._lock:
            found = set(self._secrets)
            sources, included = list(self._sources), list(self._included)
        for source in sources:
            found |= {s for s in source() if s and len(s) >= MIN_LENGTH}
        for other in included:
            if id(other) not in seen:
                found |= other._gather(seen)
        return found

    def redact(self, text: str) -> str:
        matcher = _compile(self.secrets())
        return text if matcher is None else matcher.sub(text)

    def snapshot(self) -> Callable[[str], str]:
        """A redact function for the secrets known now: many texts at once without asking the sources for each."""
        matcher = _compile(self.secrets())
        return (lambda text: text) if matcher is None else matcher.sub

    __call__ = redact

    def excerpt(self, value: object, limit: int = 300) -> str:
        """``value`` as text, redacted, then cut to ``limit``: in that order, so no half secret is left."""
        return excerpt(self.redact(value if isinstance(value, str) else str(value)), limit)

    def head(self, text: str, limit: int) -> str:
        """``excerpt(text, limit)`` of a text of any size, only its start redacted: a gateway's error page of
        megabytes quoted in a ``SlackApiError`` was redacted whole for each failed delivery (0.2 to 0.9 s of a
        blocked event loop per message for 5 MB) and logged whole. What may be the start of a secret's form cut at
        the end of the part read is dropped with it."""
        margin = _longest_form(self.secrets())
        read = 2 * limit + 2 * margin
        if len(text) <= read:
            return excerpt(self.redact(text), limit)
        shown = self.redact(text[:read])
        return excerpt(shown[: _form_start(shown, margin)] + " …", limit)


#: the running bot includes here the redactors of its settings and provider clients, for ``RedactingFilter``
PROCESS = Redactor()


class RedactingFilter(logging.Filter):
    """Redacts a log record's message (with its arguments), traceback and stack before any handler writes it.

    Installed on the bot's log handler, so it covers every logger that reaches it: ours, httpx/httpcore, hpack,
    slack_sdk, aiohttp… whatever they print of requests and answers.
    """

    def __init__(self, redactor: Redactor = PROCESS) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception as exc:  # a broken format (a library's bug): logging would print the
            # raw arguments to stderr in its "Logging error" report; the record goes on, redacted, without them
            message = f"{_shown(record.msg)} (arguments that do not fit its format: {_shown(record.args)}; {exc})"
            record.msg, record.args = self.redactor.redact(message), None
            message = record.msg
        clean = self.redactor.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.redact(record.stack_info)
        return True


def _shown(value: object) -> str:
    """``repr`` of a log record's message or arguments, whatever their ``__repr__`` does."""
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not lose the record
        return f"<{type(value).__name__} that cannot be shown>"
