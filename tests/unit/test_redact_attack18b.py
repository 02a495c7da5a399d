"""``Redactor.head`` of a secret holding a line break (eighteenth independent pass, b).

A line break inside a secret is matched with the indentation and ``|`` a log puts after it (how an
``ExceptionGroup``'s traceback prefixes its lines): its form is one atom however long that padding is. ``head`` drops
the length of the longest form from the end of what it read, counted in characters: where the padding after the
break was longer than that and the cut fell after it, the secret's first line was kept in clear ("Sup3r…First …")."""

from __future__ import annotations

from bot.ops.redact import Redactor

SECRET = "Sup3rS3cretFirstHalf\nSecondHalfOfIt99"


def test_the_start_of_a_huge_text_never_keeps_a_line_of_a_secret_whose_break_is_padded() -> None:
    redactor = Redactor([SECRET])
    assert redactor.redact("x Sup3rS3cretFirstHalf\n" + " " * 400 + "| SecondHalfOfIt99 y") == "x *** y"
    for pad in (0, 50, 300, 1500):
        shown_secret = "Sup3rS3cretFirstHalf\r\n" + " " * pad + "| SecondHalfOfIt99"
        for at in range(0, 1400, 7):
            text = "a" * 10 + " " * at + shown_secret + " z" * 100_000
            shown = redactor.head(text, 100)
            assert len(shown) <= 100
            assert "Sup3r" not in shown and "FirstHalf" not in shown and "HalfOfIt" not in shown, (pad, at, shown)


def test_the_start_of_a_text_is_still_shown() -> None:
    redactor = Redactor([SECRET])
    text = "gateway said: denied " + "x" * 1000 + "\n" + " " * 3000 + "| " + SECRET + " z" * 100_000
    assert redactor.head(text, 100).startswith("gateway said: denied xxxxx")
