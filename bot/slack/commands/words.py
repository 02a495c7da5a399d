"""Words of a command: the text split into tokens as a shell would (quotes, no escapes), ``key=value``
parameters, and the small helpers every message of the parser uses to show what was typed."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.slack.commands.table import ParseError, spec_named
from bot.slack.text import code

__all__ = [
    "WITH_SPACES",
    "Context",
    "Problem",
    "close_to",
    "either",
    "key_values",
    "matching",
    "shown",
    "split_words",
    "tokenize",
]

_SHOWN = 60  # characters of a typed token echoed back: enough to recognise it, never a wall of text


# -- context and small helpers ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    command: str
    pipelines: tuple[str, ...]
    workflows: tuple[str, ...]
    providers: tuple[str, ...]
    connections: tuple[str, ...]

    def line(self, name: str, tokens: Sequence[str]) -> str:
        """A command line a person could paste back: ``/pipeline run leads-ods note="two words"``."""
        return " ".join([self.command, name, *(_requote(t) for t in tokens)])


@dataclass(frozen=True, slots=True)
class Problem:
    """A converter's refusal; ``replacement`` is the token it guesses was meant, ``line`` a whole new command.

    ``shaped``: the token has the kind's form but a value out of range (``51`` runs, ``400d``), so it was
    meant for this argument and the person should hear about the range, not about an unknown pipeline.
    """

    message: str
    replacement: str | None = None
    line: str | None = None
    shaped: bool = False


def shown(token: str) -> str:
    """Typed text echoed back: cut short, escaped, in code so it stands apart from the explanation."""
    return code(token if len(token) <= _SHOWN else token[: _SHOWN - 1] + "…")


def _requote(token: str) -> str:
    if token and not any(c.isspace() or c in "\"'" for c in token):
        return token
    key, eq, value = token.partition("=")
    if eq and key and not any(c.isspace() or c in "\"'" for c in key):
        return f"{key}={_quoted(value)}"
    return _quoted(token)


def _quoted(text: str) -> str:
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    return '"' + text.replace('"', "'") + '"'


def matching(word: str, options: Sequence[str]) -> str | None:
    """Exact first, then the one option equal ignoring case (None when several are)."""
    if word in options:
        return word
    folded = [o for o in options if o.lower() == word.lower()]
    return folded[0] if len(folded) == 1 else None


def close_to(word: str, options: Sequence[str], n: int = 3) -> list[str]:
    """Names that contain what was typed (``leads`` → ``leads-ods``), then difflib's close matches."""
    lowered = {o.lower(): o for o in options}
    needle = word.lower()
    found = sorted((o for low, o in lowered.items() if len(needle) >= 3 and needle in low), key=len)
    found += [lowered[m] for m in difflib.get_close_matches(needle, list(lowered), n=n, cutoff=0.6)]
    return list(dict.fromkeys(found))[:n]


def either(names: Sequence[str]) -> str:
    return " or ".join(code(n) for n in names)


# -- tokens ----------------------------------------------------------------------------------------

_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
# Phones type curly quotes; some keyboards insert no-break or zero-width spaces.
_NORMALIZE = str.maketrans(
    {
        **dict.fromkeys("“”„‟″", '"'),
        **dict.fromkeys("‘’‚‛′", "'"),
        **dict.fromkeys("\u00a0\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B))), " "),
        **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff"),
    }
)


WITH_SPACES = code('note="two words"')
_WITH_APOSTROPHE = code('note="don\'t"')


def tokenize(text: str, command: str) -> list[str] | ParseError:
    """Slack's entities undone, quotes honoured; backslashes stay literal (Windows paths, regexes)."""
    plain = _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text).translate(_NORMALIZE)
    tokens = split_words(plain)
    if tokens is None:
        words = plain.split()
        spec = spec_named(words[0]) if words else None
        return ParseError(
            f"A quote is not closed. Put quotes on both sides of a value with spaces, like {WITH_SPACES}; "
            f"for an apostrophe inside a value, use double quotes: {_WITH_APOSTROPHE}.",
            usage=None if spec is None else f"{command} {spec.usage}",
        )
    return tokens


# One regex match per run of spaces, quoted part or bare part, each found by the regex engine in one pass:
# the split is linear in the text. (shlex, used before, grew each token one character at a time by string
# concatenation, which made a long token quadratic: 500 KB took seconds while the event loop waited.)
_PIECE = re.compile(r"""(?P<space>[ \t\r\n]+)|'(?P<single>[^']*)'|"(?P<double>[^"]*)"|(?P<bare>[^ \t\r\n'"]+)""")


def split_words(text: str) -> list[str] | None:
    """Split like POSIX ``shlex`` with ``whitespace_split`` and no escapes or comments: quotes group and are
    removed (``a"b c"d`` is ``ab cd``, ``""`` an empty token); None when a quote is not closed."""
    tokens: list[str] = []
    parts: list[str] = []
    quoted = False  # an empty pair of quotes still makes a token
    at = 0
    for piece in _PIECE.finditer(text):
        if piece.start() != at:
            return None  # only an opening quote without its closing one matches nothing
        at = piece.end()
        if piece.lastgroup == "space":
            if parts or quoted:
                tokens.append("".join(parts))
            parts, quoted = [], False
            continue
        quoted = quoted or piece.lastgroup != "bare"
        parts.append(piece.group(piece.lastgroup or "bare"))
    if at != len(text):
        return None
    if parts or quoted:
        tokens.append("".join(parts))
    return tokens



# -- key=value parameters --------------------------------------------------------------------------

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_KV_FORM = (
    f"Write parameters as key=value, like {code('execution_date=2024-01-31')}; "
    f"quote a value with spaces: {WITH_SPACES}."
)


def key_values(tokens: Sequence[str]) -> dict[str, str] | tuple[int, str]:
    """``key=value`` tokens → dict; else the index of the first bad token and why it is bad."""
    found: dict[str, str] = {}
    for index, token in enumerate(tokens):
        key, eq, value = token.partition("=")
        if not eq:
            if _spaced_equals(tokens, index):
                return index, f"Put no spaces around {code('=')}. {_KV_FORM}"
            return index, f"{shown(token)} is not a parameter. {_KV_FORM}"
        if not key:
            return index, f"{shown(token)} has no name before {code('=')}. {_KV_FORM}"
        if not _KEY.fullmatch(key):
            why = "has a space" if any(c.isspace() for c in key) else "is not a parameter name"
            return index, f"{shown(key)} {why}: names use letters, digits, _ . and -. {_KV_FORM}"
        if key in found:
            return index, f"{shown(key)} is given twice: give each parameter once."
        found[key] = value
    return found


def _spaced_equals(tokens: Sequence[str], index: int) -> bool:
    """``day = 2024`` or ``day= 2024``: the person meant one key=value and typed spaces around ``=``."""
    before = tokens[index - 1] if index > 0 else ""
    after = tokens[index + 1] if index + 1 < len(tokens) else ""
    return tokens[index] == "=" or after.startswith("=") or (before.endswith("=") and before.count("=") == 1)

