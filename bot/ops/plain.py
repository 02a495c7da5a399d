"""Pydantic's validation errors as plain sentences, each with an example of what works.

``pipeline-bot check`` and the bot's start-up print these to a person editing ``pipelines.yml`` or ``.env``:
"Input should be a valid tuple" or "unable to interpret input" tell them nothing they can act on. A value
error raised by the project's own validators is already a sentence; it is kept as it is.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

from pydantic_core import ErrorDetails

__all__ = ["plain_error", "safe_text"]

#: error type → the sentence after the field's name; ``{example}`` is the example of a list
_SENTENCES: Mapping[str, str] = {
    "missing": "is required",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be a whole number, e.g. 3",
    "int_parsing": "must be a whole number, e.g. 3",
    "int_from_float": "must be a whole number, e.g. 3",
    "float_type": "must be a number, e.g. 2.5",
    "float_parsing": "must be a number, e.g. 2.5",
    "string_type": "must be text, e.g. a word in quotes",
    "list_type": "must be a list, e.g. {example}",
    "tuple_type": "must be a list, e.g. {example}",
    "set_type": "must be a list, e.g. {example}",
    "dict_type": "must be a mapping of names to values, e.g. {{name: value}}",
    "model_type": "must be a mapping of keys to values, e.g. {{key: value}}",
    "model_attributes_type": "must be a mapping of keys to values, e.g. {{key: value}}",
    "timedelta_type": "must be a duration, e.g. 90s, 15m or 1h30m",
    "timedelta_parsing": "must be a duration, e.g. 90s, 15m or 1h30m",
    "url_type": "must be a URL, e.g. https://example.com/api",
    "url_parsing": "must be a URL, e.g. https://example.com/api",
    "url_scheme": "must be an http(s) URL, e.g. https://example.com/api",
    "path_type": "must be a file path, e.g. pipelines.yml",
    "json_invalid": "is not valid JSON; write a list like [U0ALICE01, U0BOB0002] or U0ALICE01,U0BOB0002",
    "json_type": "is not valid JSON",
    "too_short": "must have at least {min_length} item(s), e.g. {example}",
    "too_long": "must have at most {max_length} item(s)",
    "string_too_short": "must be at least {min_length} character(s) long",
    "string_too_long": "must be at most {max_length} character(s) long",
    "string_pattern_mismatch": "must match {pattern}",
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be {ge} or more",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be {le} or less",
    "enum": "must be one of {expected}",
    "literal_error": "must be one of {expected}",
    "none_required": "must be left out",
    "invalid_key": "has a key that is not a word; write keys as names, like attempts",
}


#: a list field's example when the value given is no single word to put in brackets
_LISTS: Mapping[str, str] = {
    "owners": "[U0ALICE01, S0DATAENG]",
    "allow_run": '["*"] or [U0ALICE01, S0DATAENG, C0ANALYTIC]',
    "allow_change": "[U0ALICE01, S0DATAENG]",
    "approvers": "[U0ALICE01, S0DATAENG]",
    "escalate_to": "[S0ONCALL] or [@on-call]",
    "tags": "[ingest, finance]",
    "choices": "[small, large]",
    "on": "[failed, unknown]",
    "on_success": "[publish, notify]",
    "on_failure": "[cleanup]",
    "start": "[ingest]",
}


def plain_error(err: ErrorDetails, field: str) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as ``<field> <sentence>``.

    ``field``: the name a person wrote (``owners``, ``PORT``). A single word given where a list belongs is the
    list's example (``owners: U0ALICE01`` → ``owners must be a list, e.g. [U0ALICE01]``)."""
    kind = str(err.get("type", ""))
    ctx = dict(err.get("ctx") or {})
    if kind in ("value_error", "assertion_error"):
        message = str(err.get("msg", ""))
        return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    value = err.get("input")
    if kind == "string_type" and isinstance(value, bool | int | float | datetime.date):
        return f"{field} must be text: put it in quotes (YAML reads {_unquoted(value)})"
    sentence = _SENTENCES.get(kind)
    if sentence is None:  # a type this map does not know yet: say what is expected without pydantic's words
        return f"{field} has a value that cannot be used here"
    if "expected" in ctx:
        ctx["expected"] = str(ctx["expected"]).replace("'", "").replace(" or ", ", ")
    word = value.strip() if isinstance(value, str) else ""
    fits = len(word) <= 40 and re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.@-]*", word) is not None
    name = re.sub(r"\[\d+\]$", "", field)
    example = f"[{word}]" if fits else _LISTS.get(name, "[first, second]")
    try:
        text = sentence.format(example=example, **{k: _number(v) for k, v in ctx.items()})
    except (KeyError, IndexError):  # a context pydantic did not give: the sentence without its detail
        text = sentence.split(" {")[0].split(",")[0]
    return f"{field} {text}"


def safe_text(text: str) -> str:
    """``text`` with control and other unprintable characters shown as escapes (``\\x1b``, ``\\u202e``), so a
    value from a file cannot move the cursor, recolour a terminal or reorder what is printed after it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _number(value: object) -> str:
    """A bound as a person writes it: 0, not 0.0."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _unquoted(value: object) -> str:
    """What YAML made of a value written without quotes."""
    if isinstance(value, bool):
        return "yes, no, on, off, true and false unquoted as true or false"
    if isinstance(value, int | float):
        return f"{value if len(str(value)) <= 20 else 'digits'} unquoted as a number"
    return "2024-01-31 unquoted as a date"
