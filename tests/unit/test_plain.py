"""Pydantic's errors as plain sentences (``bot/ops/plain.py``): what `check` and the start print."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from bot.ops.plain import plain_error, safe_text


class Sample(BaseModel):
    owners: tuple[str, ...] = ()
    watch: bool = False
    attempts: int = Field(default=3, ge=1)
    pace: float = Field(default=1.0, gt=0)
    mode: Literal["run_once", "skip"] = "run_once"
    name: str = ""


def said(**data: object) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate(data)
    return [plain_error(err, str(err["loc"][0])) for err in caught.value.errors()]


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        ({"owners": "U0ALICE01"}, "owners must be a list, e.g. [U0ALICE01]"),
        ({"owners": "two words"}, "owners must be a list, e.g. [U0ALICE01, S0DATAENG]"),
        ({"watch": "yes please"}, "watch must be true or false"),
        ({"attempts": 0}, "attempts must be 1 or more"),
        ({"attempts": "many"}, "attempts must be a whole number, e.g. 3"),
        ({"pace": 0}, "pace must be more than 0"),
        ({"pace": "fast"}, "pace must be a number, e.g. 2.5"),
        ({"mode": "always"}, "mode must be one of run_once, skip"),
        ({"name": 42}, "name must be text: put it in quotes (YAML reads 42 unquoted as a number)"),
    ],
)
def test_each_error_is_a_sentence_with_what_works(data: dict[str, object], sentence: str) -> None:
    assert said(**data) == [sentence]


def test_an_error_kind_not_in_the_map_says_so_without_pydantic_s_words() -> None:
    text = plain_error({"type": "some_new_kind", "loc": ("x",), "msg": "Input should be odd", "input": 3}, "x")
    assert text == "x has a value that cannot be used here"


def test_control_characters_are_shown_as_escapes() -> None:
    assert safe_text("ok") == "ok"
    assert safe_text("a\x1b[2Jb\u202ec\n") == "a\\x1b[2Jb\\u202ec\\n"
