"""The redactor: every wire form of a secret is found, a secret straddling a cut never leaves a piece behind, and
the log filter redacts whatever library logged it. The forms are worked out here, independently of
``bot.ops.redact.wire_forms``."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import httpx
import pytest

from bot.config import Settings
from bot.errors import ProviderError
from bot.ops.logs import setup_logging
from bot.ops.redact import PROCESS, Redactor
from bot.providers import datakitchen
from bot.providers._http import Call, HttpCaller

SECRET = 'Kx7&Qv w%Zp+"\\é9'
USER = "bot@example.com"


def lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


FORMS = {
    "literal": SECRET,
    "form field (quote_plus)": quote_plus(SECRET),
    "form field, lower-case hex": lower_hex(quote_plus(SECRET)),
    "path segment (quote)": quote(SECRET, safe=""),
    "path segment, lower-case hex": lower_hex(quote(SECRET, safe="")),
    "JSON, ASCII only": json.dumps(SECRET)[1:-1],
    "JSON, ASCII only, upper-case \\u hex": json.dumps(SECRET)[1:-1].replace("\\u00e9", "\\u00E9"),
    "JSON, UTF-8": json.dumps(SECRET, ensure_ascii=False)[1:-1],
    "JSON in JSON": json.dumps(json.dumps(SECRET)[1:-1])[1:-1],
    "JSON in JSON, UTF-8": json.dumps(json.dumps(SECRET, ensure_ascii=False)[1:-1], ensure_ascii=False)[1:-1],
    "JSON in a query string": quote_plus(json.dumps(SECRET)[1:-1]),
    "base64": base64.b64encode(SECRET.encode()).decode(),
    "base64, URL-safe": base64.urlsafe_b64encode(SECRET.encode()).decode(),
    "Basic auth": base64.b64encode(f"{USER}:{SECRET}".encode()).decode(),
    "Python repr": repr(SECRET)[1:-1],
    "Python ascii": ascii(SECRET)[1:-1],
    "bytes repr": repr(SECRET.encode())[2:-1],
    "HTML": html.escape(SECRET),
    "decomposed é": unicodedata.normalize("NFD", SECRET),
    "decomposed é, form field": quote_plus(unicodedata.normalize("NFD", SECRET)),
}


@pytest.mark.parametrize("form", FORMS.values(), ids=FORMS.keys())
def test_every_wire_form_of_a_secret_is_redacted(form: str) -> None:
    redactor = Redactor([SECRET])
    redactor.add_basic_auth(USER, SECRET)
    assert form != SECRET or form == FORMS["literal"]
    assert redactor.redact(f"they said [{form}] to us") == "they said [***] to us"


def test_the_longest_form_is_redacted_whole() -> None:
    """``user:password`` holds the password: redacting the password first would leave the user and a colon
    (and its base64 would never match)."""
    redactor = Redactor()
    redactor.add_basic_auth(USER, SECRET)
    assert redactor.redact(f"url http://{USER}:{SECRET}@host/") == "url http://***@host/"


def test_short_values_are_left_alone() -> None:
    assert Redactor(["abc", "", None]).redact("abc abc") == "abc abc"


def test_secrets_from_sources_and_included_redactors_count_as_they_change() -> None:
    tokens: list[str] = []
    inner = Redactor(sources=[lambda: tokens])
    outer = Redactor()
    outer.include(inner)
    assert outer.redact("tok-1234") == "tok-1234"
    tokens.append("tok-1234")
    assert outer.redact("a tok-1234") == "a ***"
    outer.exclude(inner)
    assert outer.redact("tok-1234") == "tok-1234"


def pieces(secret: str, size: int = 5) -> set[str]:
    """Every run of ``size`` characters of a secret's literal and JSON forms: what a cut would leave behind."""
    found = set()
    for form in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        found |= {form[i : i + size] for i in range(len(form) - size + 1)}
    return found


@pytest.mark.parametrize("at", range(290, 300))
def test_a_secret_straddling_the_cut_leaves_no_piece_behind(at: int) -> None:
    text = "x" * at + SECRET + " and more words after it"
    shown = Redactor([SECRET]).excerpt(text, 300)
    assert not [p for p in pieces(SECRET) if p in shown], shown


# -- the provider plumbing ---------------------------------------------------------------------------------------


def caller_answering(status: int, body: object, *, secrets: tuple[str, ...] = (SECRET,)) -> HttpCaller:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    client = httpx.AsyncClient(base_url="https://api.example/", transport=httpx.MockTransport(answer))
    return HttpCaller(client, provider="Prov", connection="prov", secrets=secrets)


PLAIN = "Kx7Qv-w9Zp-tok3n"  # nothing in it that JSON escapes: only the cut can hide it


@pytest.mark.parametrize("secret", [PLAIN, SECRET], ids=["plain", "awkward"])
@pytest.mark.parametrize("at", [270, 273, 276])  # the cut at 300 leaves 12 to 6 characters of it
async def test_an_error_body_cut_for_its_message_is_redacted_before_the_cut(at: int, secret: str) -> None:
    """An error body without a ``message`` is shown as its JSON, cut to length: today's cut came first."""
    caller = caller_answering(400, {"request_echo": "x" * at + secret + "y" * 60}, secrets=(secret,))
    with pytest.raises(ProviderError) as caught:
        await caller.send(Call("POST", "run", "run the job", idempotent=False))
    shown = str(caught.value)
    assert "request_echo" in shown
    assert not [p for p in pieces(secret) if p in shown], shown


async def test_a_json_escaped_secret_in_an_error_is_redacted() -> None:
    echoed = json.dumps({"Authorization": f"Bearer {SECRET}"})  # the request's headers, as JSON inside the message
    caller = caller_answering(401, {"message": f"we could not use {echoed}"})
    with pytest.raises(ProviderError) as caught:
        await caller.send(Call("GET", "status", "check the run"))
    shown = str(caught.value)
    assert "we could not use" in shown and "***" in shown
    assert not [p for p in pieces(SECRET) if p in shown], shown


def datakitchen_answering(error_body: object) -> datakitchen.Client:
    """A DataKitchen client whose login works and whose every other call answers 400 with ``error_body``."""
    token = "eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9.sig"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/v2/login"):
            return httpx.Response(200, text=token)
        return httpx.Response(400, json=error_body)

    http = httpx.AsyncClient(base_url="https://dk.example/", transport=httpx.MockTransport(answer))
    conn = datakitchen.Connection(base_url="https://dk.example", username=USER, password=SECRET)
    client = datakitchen.Client("dk", conn, http=http)
    http.auth = client.session
    return client


@pytest.mark.parametrize("at", [255, 265, 275])
async def test_datakitchen_redacts_its_error_words_before_cutting_them(at: int) -> None:
    client = datakitchen_answering({"message": {"echo": {"form": "x" * at + quote_plus(SECRET) + "y" * 40}}})
    job = datakitchen.Job(kitchen="k", recipe="r", variation="v")
    with pytest.raises(ProviderError) as caught:
        await client.get_status(job, "order-1")
    shown = str(caught.value)
    assert "echo" in shown
    assert not [p for p in pieces(quote_plus(SECRET)) | pieces(SECRET) if p in shown], shown


# -- logs ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The bot's logging as ``run`` sets it up (JSON, DEBUG), written to a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("hpack", "hpack.hpack", "h2", "httpcore")}
    setup_logging("DEBUG", "json")
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name, value in levels.items():
            logging.getLogger(name).setLevel(value)


def test_the_log_filter_redacts_every_record_of_every_library(log_output: io.StringIO) -> None:
    secrets = Redactor([SECRET])
    PROCESS.include(secrets)
    try:
        logging.getLogger("bot.providers").warning("login refused: %s", f"password={quote_plus(SECRET)}")
        logging.getLogger("slack_sdk.web").error("answer %s", {"echo": SECRET})
        try:
            raise RuntimeError(f"could not use {json.dumps(SECRET)}")
        except RuntimeError:
            logging.getLogger("bot.runtime").exception("unexpected")
    finally:
        PROCESS.exclude(secrets)
    written = log_output.getvalue()
    assert "login refused" in written and "unexpected" in written and "RuntimeError" in written
    assert not [p for p in pieces(SECRET) | pieces(quote_plus(SECRET)) if p in written], written


def test_http2_header_coding_is_kept_out_of_debug_logs(log_output: io.StringIO) -> None:
    """hpack prints every header it codes at DEBUG, ``authorization`` with the bearer token included."""
    logging.getLogger("hpack.hpack").debug("Adding %s=%s to the header table", b"authorization", b"Bearer tok-987")
    assert "tok-987" not in log_output.getvalue()


def test_settings_name_their_secrets_with_the_database_password() -> None:
    settings = Settings(
        _env_file=None,
        slack_bot_token="xoxb-1234",
        slack_signing_secret="sign-1234",
        database_url="postgresql+asyncpg://bot:p%40ss%20word@db:5432/bot",
    )
    assert {"xoxb-1234", "sign-1234", "p%40ss%20word", "p@ss word"} <= set(settings.secret_values())
