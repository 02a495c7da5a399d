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
from bot.errors import ProviderAuthError, ProviderError
from bot.models import RunState, RunStatus, TaskStatus
from bot.ops.logs import LIBRARIES, setup_logging
from bot.ops.redact import PROCESS, Redactor
from bot.providers import datakitchen, invision
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
    # found by a second independent pass: escapes other encoders use, and escapes of escapes
    "every byte percent-encoded": "".join(f"%{b:02X}" for b in SECRET.encode()),
    "every character \\u-escaped": "".join(f"\\u{ord(c):04x}" for c in SECRET),
    "Go JSON (<>& as \\u00XX)": json.dumps(SECRET)[1:-1].replace("&", "\\u0026"),
    "HTML, decimal references": "".join(c if c.isalnum() else f"&#{ord(c)};" for c in SECRET),
    "HTML, hex references, upper case": "".join(c if c.isalnum() else f"&#X{ord(c):X};" for c in SECRET),
    "HTML, every character a reference": "".join(f"&#{ord(c)};" for c in SECRET),
    "repr of repr": repr(repr(SECRET)[1:-1])[1:-1],
    "repr of a JSON body": repr(json.dumps({"t": SECRET}))[1:-1].split('"t": "', 1)[1][:-2],
    "encodeURIComponent": quote(SECRET, safe="!~*'()"),
    "java.net.URLEncoder": quote_plus(SECRET, safe="*").replace("~", "%7E"),
    "a path as httpx sends it": httpx.URL("https://h/").join(SECRET).raw_path.decode()[1:],
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
    levels = {name: logging.getLogger(name).level for name in (*LIBRARIES, "hpack.hpack", "h2")}
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


# -- found by a second independent pass ----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["p<a>s&s=w0rd'x", "Tok=en<>&'"])
def test_go_and_gson_json_escapes_are_redacted(secret: str) -> None:
    """Go's encoding/json writes < > & as \\u003c \\u003e \\u0026; Gson also = and ' (\\u003d \\u0027)."""
    go = json.dumps(secret)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    gson = go.replace("=", "\\u003d").replace("'", "\\u0027")
    for form in (go, gson, gson.replace("\\u003d", "\\u003D")):
        assert Redactor([secret]).redact(f"[{form}]") == "[***]", form


@pytest.mark.parametrize("line_break", ["\n", "\r\n", "\n  | ", "\n    |   | "])
def test_a_secret_with_a_line_break_is_redacted_when_a_log_prefixes_its_second_line(line_break: str) -> None:
    """A traceback of an ExceptionGroup prefixes each line of a message with ``|``: a multi-line secret is split."""
    secret = "first-half-of-it\nsecond-half-of-it"
    text = "note " + secret.replace("\n", line_break) + " and after"
    assert Redactor([secret]).redact(text) == "note *** and after"


def test_an_exception_group_and_a_never_retrieved_task_hold_no_piece_of_a_secret(log_output: io.StringIO) -> None:
    """The traceback of an ExceptionGroup (lines prefixed with ``|``) and asyncio's "Task exception was never
    retrieved", which shows ``repr()`` of an exception whose message holds a ``repr()``: escaped twice."""
    secret = 'dk-Pa55"w\\ord\nsecond-line'
    secrets = Redactor([secret])
    PROCESS.include(secrets)
    try:
        error = RuntimeError(f"wrapped {secret!r}")
        error.add_note(f"note {secret}")
        try:
            raise ExceptionGroup("group", [error, KeyError({"password": secret})])
        except ExceptionGroup:
            logging.getLogger("bot.runtime").exception("group failed")
        logging.getLogger("asyncio").error("Task exception was never retrieved\nexception=%r", error)
    finally:
        PROCESS.exclude(secrets)
    written = log_output.getvalue()
    assert "group failed" in written and "never retrieved" in written
    halves = {half for part in secret.split("\n") for half in pieces(part)}
    escaped = {json.dumps(repr(secret))[1:-1], json.dumps(repr(repr(secret)))[1:-1]}
    assert not [p for p in halves | {p for e in escaped for p in pieces(e)} if p in written], written


def test_a_log_call_whose_arguments_do_not_fit_its_format_shows_them_redacted(
    log_output: io.StringIO, capsys: pytest.CaptureFixture[str]
) -> None:
    """A library's bug: one argument short. logging would report it on stderr with the raw arguments."""
    secrets = Redactor([SECRET])
    PROCESS.include(secrets)
    try:
        logging.getLogger("some.library").warning("retrying with token=%s after %d s", SECRET)
    finally:
        PROCESS.exclude(secrets)
    written, stderr = log_output.getvalue(), capsys.readouterr().err
    assert "retrying with token" in written and "***" in written
    assert not [p for p in pieces(SECRET) if p in written + stderr], written + stderr


def test_every_provider_supplied_field_of_a_status_is_redacted() -> None:
    caller = caller_answering(200, {})
    status = RunStatus(
        run_id=f"id-{SECRET}",
        state=RunState.FAILED,
        raw_status=f"E {SECRET}",
        message=f"failed: {SECRET}",
        warning=f"late {SECRET}",
        extra={"order": f"o-{SECRET}"},
        tasks=(TaskStatus(name=f"load {SECRET}", state=RunState.FAILED, raw_status=f"E {SECRET}", message=SECRET),),
    )
    shown = caller.redact_status(status)
    assert shown.raw_status == "E ***" and shown.run_id == "id-***" and shown.extra == {"order": "o-***"}
    assert (shown.tasks[0].name, shown.tasks[0].raw_status, shown.tasks[0].message) == ("load ***", "E ***", "***")
    assert not [p for p in pieces(SECRET) if p in repr(shown)], shown


async def test_invision_redacts_its_run_id_and_raw_status() -> None:
    key = "IvKey-0123456789abcdef"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"runId": f"r-{key}", "status": f"Running {key}"})

    http = httpx.AsyncClient(base_url="https://iv.example/", transport=httpx.MockTransport(answer))
    client = invision.Client("iv", invision.Connection(base_url="https://iv.example", api_key=key), http=http)
    status = await client.get_status(invision.Job(dataflow_id="f"), "r1")
    assert (status.run_id, status.raw_status) == ("r-***", "Running ***")


async def test_a_redirect_path_is_redacted_before_it_is_cut() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "/" + "a" * 190 + PLAIN + "/more"})

    http = httpx.AsyncClient(base_url="https://api.example/", transport=httpx.MockTransport(answer))
    caller = HttpCaller(http, provider="Prov", connection="prov", secrets=(PLAIN,))
    with pytest.raises(ProviderError) as caught:
        await caller.send(Call("GET", "status", "check the run"))
    shown = str(caught.value)
    assert "redirect" in shown
    assert not [p for p in pieces(PLAIN) if p in shown], shown


async def test_a_datakitchen_password_too_short_to_redact_alone_is_hidden_in_an_echoed_login_form() -> None:
    """``check`` refuses such a password; a client built with one still never shows the login form it sent."""
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"message": f"no such login: {request.content.decode()}"})

    http = httpx.AsyncClient(base_url="https://dk.example/", transport=httpx.MockTransport(answer))
    conn = datakitchen.Connection(base_url="https://dk.example", username=USER, password="p&1")
    client = datakitchen.Client("dk", conn, http=http)
    http.auth = client.session
    with pytest.raises(ProviderAuthError) as caught:
        await client.get_status(datakitchen.Job(kitchen="k", recipe="r", variation="v"), "order-1")
    shown = str(caught.value)
    assert "no such login" in shown and "***" in shown
    assert "p%261" not in shown and "p&1" not in shown, shown


async def test_bolt_and_socket_mode_loggers_stay_quiet_when_the_bot_logs_at_debug(log_output: io.StringIO) -> None:
    """Bolt's app logs under ``bot.slack.bolt`` and the Socket Mode client inherits it: every request, listener
    and envelope at DEBUG, unless held at LIBRARY_LOG_LEVEL like the other libraries."""
    import types
    from typing import Any, cast

    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    from bot.slack.app import build_app, web_client

    settings = Settings(_env_file=None, slack_bot_token="xoxb-test-token", slack_app_token="xapp-test-token-1")
    app = build_app(settings, cast(Any, types.SimpleNamespace(command="/pipeline")), web_client(settings))
    handler = AsyncSocketModeHandler(app, "xapp-test-token-1")
    try:
        handler.client.logger.debug("envelope received: %s", "payload-of-the-envelope")
        app.logger.debug("listener ran: %s", "payload-of-the-request")
    finally:
        await handler.client.close()  # type: ignore[no-untyped-call]  # slack_sdk's client carries no annotations
    assert not handler.client.logger.isEnabledFor(logging.DEBUG)
    assert "payload-of" not in log_output.getvalue()
    logging.getLogger("bot.tracking").debug("the bot's own line")
    assert "the bot's own line" in log_output.getvalue()  # the bot itself still logs at DEBUG


def test_settings_never_show_the_database_password_and_know_its_every_form() -> None:
    settings = Settings(_env_file=None, database_url="postgresql+asyncpg://bot:Db-Pa55word@db/pb")
    assert "Db-Pa55word" not in repr(settings) and "Db-Pa55word" not in settings.model_dump_json()
    assert "Db-Pa55word" not in str(settings.model_dump())
    assert "bot:***@db/pb" in repr(settings)
    assert settings.database_url.endswith("bot:Db-Pa55word@db/pb")  # what the engine is given is untouched
    query = Settings(_env_file=None, database_url="postgresql+asyncpg://bot@db/pb?password=Db-Pa55word&ssl=1")
    assert "Db-Pa55word" in query.secret_values()
    assert "Db-Pa55word" not in repr(query) and "password=***" in repr(query)
    # SQLAlchemy reads the password of bot:p/ss@db as p/ss (urlsplit stops at the '/'); a short one is hidden
    # as user:password
    slash = Settings(_env_file=None, database_url="postgresql+asyncpg://bot:pa/ss-word@db/pb")
    assert {"pa/ss-word", "bot:pa/ss-word"} <= set(slash.secret_values())
    short = Settings(_env_file=None, database_url="postgresql+asyncpg://bot:pw@db/pb")
    assert Redactor(short.secret_values()).redact("connect bot:pw@db") == "connect ***@db"


def test_a_long_secret_is_redacted_in_its_forms_without_a_pattern() -> None:
    """Secrets over 256 characters (session tokens, keys) are searched as plain text: compiling them into the
    pattern cost seconds for a long one, on the event loop."""
    token = "eyJ" + "ab/cd+ef=" * 60
    forms = [token, quote(token, safe=""), lower_hex(quote(token, safe="")), quote_plus(token),
             json.dumps(token)[1:-1].replace("/", "\\/"), base64.b64encode(token.encode()).decode()]
    redactor = Redactor([token, "short-secret-1"])
    for form in forms:
        assert redactor.redact(f"[{form}] and short-secret-1") == "[***] and ***", form
