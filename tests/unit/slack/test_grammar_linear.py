"""The command text is split in one pass and capped: a long text cannot hold the event loop.

No timing here (timed unit tests are flaky by nature): the split is checked against POSIX ``shlex``, which it
replaces, and its linearity is checked structurally, by counting the calls made while parsing. A text ten or a
thousand times longer must not make more calls: the per-character work happens inside the regex engine, in one
pass. (``shlex`` read the text one character per call and grew each token by string concatenation: quadratic.)
"""

from __future__ import annotations

import random
import shlex
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

from bot.slack.commands import words
from bot.slack.commands.grammar import MAX_TEXT, Parsed, ParseError, parse

PIPELINES = ("leads-ods", "orders")


def _posix_shlex(text: str) -> list[str] | None:
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    lexer.escape = ""
    try:
        return list(lexer)
    except ValueError:
        return None


def _calls(work: Callable[[], object]) -> int:
    """How many Python and built-in calls ``work`` makes."""
    count = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return count


@pytest.mark.parametrize(
    "text",
    ["", " ", "a", "a b", "  a  b  ", "a\tb\nc\rd", "''", '""', "a '' b", "x=''", 'x=""', "a'b c'd", 'a"b c"d',
     "'a\"b'", "\"a'b\"", "'", '"', "a '", 'a "b', "a\\b", "\\'", "é 😀 \x00", "x='a b'\"c d\"e", "'' ''", "a''b"],
)
def test_the_split_is_posix_shlex_without_escapes(text: str) -> None:
    assert words.split_words(text) == _posix_shlex(text)


def test_the_split_agrees_with_shlex_on_random_texts() -> None:
    rng = random.Random(4000)
    alphabet = "ab =é😀'\"\\\t\n\r"
    for _ in range(5000):
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 24)))
        assert words.split_words(text) == _posix_shlex(text), repr(text)


@pytest.mark.parametrize("shape", ["x={}", "x='{} b'", "{}é", "x={}→"])
def test_splitting_makes_as_many_calls_for_a_long_token_as_for_a_short_one(shape: str) -> None:
    def tokenize(n: int) -> Callable[[], object]:
        text = "run leads-ods " + shape.format("a" * n)
        return lambda: words.tokenize(text, "/pipeline")

    short = _calls(tokenize(10))
    assert _calls(tokenize(10_000)) == short
    assert _calls(tokenize(1_000_000)) == short


def test_parsing_makes_as_many_calls_at_the_cap_as_for_a_short_text() -> None:
    def parse_with(value: str) -> Callable[[], object]:
        text = f"run leads-ods note={value}"
        return lambda: parse(text, pipelines=PIPELINES, providers=("rivery",))

    long_value = "é" + "a" * (MAX_TEXT - len("run leads-ods note=") - 1)
    assert isinstance(parse_with(long_value)(), Parsed)
    assert _calls(parse_with(long_value)) == _calls(parse_with("éa"))


def test_many_tokens_cost_calls_in_proportion() -> None:
    def parse_words(n: int) -> Callable[[], object]:
        text = "run leads-ods " + " ".join(f"k{i}=v" for i in range(n))
        return lambda: parse(text, pipelines=PIPELINES, providers=("rivery",))

    base, ten, hundred = _calls(parse_words(1)), _calls(parse_words(10)), _calls(parse_words(100))
    per_token = (ten - base) / 9
    assert hundred - base == pytest.approx(99 * per_token, rel=0.05)


def test_a_text_over_the_cap_is_refused_saying_the_cap() -> None:
    text = "run leads-ods note=" + "é" * 500_000
    calls = _calls(lambda: parse(text, pipelines=PIPELINES, providers=("rivery",)))
    result = parse(text, pipelines=PIPELINES, providers=("rivery",))
    assert isinstance(result, ParseError)
    assert "500,019 characters long" in result.message
    assert "at most 4,000" in result.message
    assert calls < 50  # refused before any work on the text
    at_cap = "run leads-ods note=" + "a" * (MAX_TEXT - len("run leads-ods note="))
    assert isinstance(parse(at_cap, pipelines=PIPELINES, providers=("rivery",)), Parsed)
