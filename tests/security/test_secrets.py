"""Secrets stay secret when providers misbehave: every provider answers errors that echo back the request it got
(its headers with the credential, its body with the password), on triggers, on status checks long enough to
raise a "cannot reach" alert, and on DataKitchen's login. Neither a secret of the configuration, nor the session
token DataKitchen handed out, nor Slack's token or signing secret, appears in anything the bot sent to Slack (replies,
cards, alerts), in its log lines, or on its /metrics and /readyz pages. ``tests/scenario/test_logs.py`` covers the
logs of an ordinary failure; this is the hostile case.

The second test does it again with credentials full of characters the wire rewrites (space & % + " \\ é): the
echoes then hold them form-encoded, JSON-escaped, escaped twice; none of those forms may come out either, in the
records at DEBUG or through the bot's own log filter."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
from aiohttp import web

from bot.emulators._core import ManualClock, Outcome
from bot.emulators._server import EmulatorServer, json_response
from bot.ops.logs import JsonFormatter
from bot.ops.redact import RedactingFilter
from tests.scenario.harness import DK_JOB, ENV, RIVER, World, make_emulators, running_world
from tests.scenario.surface import OUR_FAULT, ask, everything_sent
from tests.security import Recorder, security_catalog, security_world

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: handler attribute per provider: the trigger, the status check
ROUTES = {
    "rivery": ("on_run", "on_check_run"),
    "tailer": ("on_launch", "on_status"),
    "invision": ("on_start", "on_status"),
    "datakitchen": ("on_create", "on_servings"),
}


class Echo:
    """Makes a handler answer with an error that repeats the request (headers and body) while ``on`` is set."""

    def __init__(self) -> None:
        self.on = {"trigger": True, "status": False, "login": True}
        self.echoed = 0
        self.tokens: list[str] = []  # the session tokens DataKitchen handed out

    def wrap(self, server: EmulatorServer, attribute: str, kind: str) -> None:
        original: Handler = getattr(server, attribute)

        async def answer(request: web.Request) -> web.StreamResponse:
            if not self.on[kind]:
                return await original(request)
            self.echoed += 1
            body = (await request.read()).decode("utf-8", "replace")
            said = f"we could not use {json.dumps(dict(request.headers))} with {body} on {request.path_qs}"
            status = 500 if kind == "status" else 401  # a status check is retried; a trigger is refused
            return json_response({"message": said, "error": said, "detail": said}, status=status)

        setattr(server, attribute, answer)

    def install(self, emulators: dict[str, EmulatorServer]) -> None:
        for name, (trigger, status) in ROUTES.items():
            self.wrap(emulators[name], trigger, "trigger")
            self.wrap(emulators[name], status, "status")
        self.wrap(emulators["datakitchen"], "on_login", "login")
        dk = emulators["datakitchen"]
        issue: Callable[[str], str] = dk.issue_token  # type: ignore[attr-defined]

        def issue_token(user: str) -> str:
            token = issue(user)
            self.tokens.append(token)
            return token

        dk.issue_token = issue_token  # type: ignore[attr-defined]


async def echo_everything(w: World, echo: Echo) -> tuple[str, list[str]]:
    """Make every provider echo the request on a trigger (and DataKitchen on its login), then on status checks long
    enough for a "cannot reach" alert; let the runs end and ask for their history. Everything sent to Slack, and
    the /metrics and /readyz pages."""
    pipelines = ("leads-ods", "iowa-pda", "budget", "sales-dashboard")
    for name in pipelines:  # every trigger refused, with the request echoed
        reply = await ask(w, f"run {name}")
        assert reply.text.startswith("⚠️") and not any(bad in reply.text for bad in OUR_FAULT), reply.text
    echo.on["trigger"] = echo.on["login"] = False
    for name in pipelines:
        assert (await w.command(f"run {name}")).ok
    await w.until(lambda: len(w.cards()) == len(pipelines), what="the cards")
    echo.on["status"] = True  # now every status check echoes: unknown, then "cannot reach"
    await w.until(lambda: any("Cannot reach" in m.text for m in w.slack.messages("C0ALERTS")), 20,
                  what="a cannot-reach alert")
    await w.settle(1.5)
    echo.on["status"] = False
    w.advance(60)
    await w.until(lambda: all("succeeded" in m.text for m in w.cards()), 20, what="every run's end")
    for name in pipelines:
        await ask(w, f"last {name}")
    await ask(w, "status")
    assert w.runtime.http is not None
    async with httpx.AsyncClient() as client:
        pages = [(await client.get(f"{w.runtime.http.url}/{page}")).text for page in ("metrics", "readyz")]
    return everything_sent(w), pages


async def test_secrets_echoed_by_providers_never_reach_slack_logs_or_pages(tmp_path: Path) -> None:
    echo = Echo()
    with Recorder() as logs:
        async with security_world(tmp_path, prepare=echo.install) as w:
            sent, pages = await echo_everything(w, echo)
        formatter = JsonFormatter()
        lines = "\n".join(formatter.format(r) for r in logs.records)

    assert echo.echoed >= 10
    secrets = {**{k: v for k, v in ENV.items() if k != "DK_USER"},
               "SLACK_BOT_TOKEN": w.settings.slack_bot_token.get_secret_value(),  # type: ignore[union-attr]
               "SLACK_SIGNING_SECRET": w.settings.slack_signing_secret.get_secret_value()}  # type: ignore[union-attr]
    secrets.update({f"DataKitchen session token {i}": t for i, t in enumerate(echo.tokens)})
    assert len(secrets) > len(ENV), "DataKitchen handed out no session token: the test lost its point"
    for where, text in (("Slack", sent), ("the logs", lines), ("/metrics and /readyz", "\n".join(pages))):
        leaked = [name for name, secret in secrets.items() if secret in text]
        assert not leaked, f"{leaked} in {where}"
    # and the echoes were shown (redacted), not dropped: the person learns what the provider said
    assert "we could not use" in sent and "***" in sent


# -- secrets that change on the wire -------------------------------------------------------------------------

#: credentials with every character an encoding rewrites: space & % + " \ and, where the wire takes it (a form field,
#: a signing key; HTTP headers carry ASCII only), a non-ASCII letter
AWKWARD = {
    "RIVERY_TOKEN": 'riv tok&en%2B+"\\r1',
    "TAILER_JWT": 'tai ler&jw%t+"\\t2',
    "INVISION_KEY": 'inv key&%+"\\i3',
    "DK_USER": "bot@example.com",
    "DK_PASSWORD": 'p&ss w%rd+"\\é',
}
AWKWARD_BOT_TOKEN = 'xoxb-sl&ck%+"\\tok'
AWKWARD_SIGNING_SECRET = 'sign ing&%+"\\é'


def on_the_wire(secret: str) -> set[str]:
    """What a secret looks like once encoded for a form, a URL, a JSON string (ASCII-only or not, once or twice),
    base64: worked out here, independently of the bot's redactor."""
    def hexes(text: str) -> set[str]:
        return {text, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)}

    jsons = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    jsons |= {json.dumps(j)[1:-1] for j in set(jsons)}
    forms = {secret} | jsons
    for text in (secret, *jsons):
        forms |= hexes(quote(text, safe="")) | hexes(quote_plus(text)) | hexes(quote(text))
    forms.add(base64.b64encode(secret.encode()).decode())
    return forms


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """Which secrets appear in a text in any wire form (Slack's &amp; escaping undone too)."""
    plain = html.unescape(text)
    return [
        f"{name} as {form!r}"
        for name, secret in secrets.items()
        for form in on_the_wire(secret)
        if form in text or form in plain
    ]


async def test_secrets_in_every_wire_form_never_reach_slack_logs_or_pages(tmp_path: Path) -> None:
    from bot.emulators.slack import FakeSlack

    echo = Echo()
    clock = ManualClock()
    emulators = make_emulators(clock, AWKWARD)
    echo.install(emulators)
    slack = FakeSlack(bot_token=AWKWARD_BOT_TOKEN, signing_secret=AWKWARD_SIGNING_SECRET)
    secrets = {**{k: v for k, v in AWKWARD.items() if k != "DK_USER"},
               "SLACK_BOT_TOKEN": AWKWARD_BOT_TOKEN, "SLACK_SIGNING_SECRET": AWKWARD_SIGNING_SECRET,
               "DK basic auth": f"{AWKWARD['DK_USER']}:{AWKWARD['DK_PASSWORD']}"}
    # the bot's own log handler, as `pipeline-bot run` sets it up: its filter is the net under every library
    netted = io.StringIO()
    net = logging.StreamHandler(netted)
    net.setFormatter(JsonFormatter())
    net.addFilter(RedactingFilter())
    logging.getLogger().addHandler(net)
    try:
        with Recorder() as logs:
            async with running_world(tmp_path, clock, emulators, slack, security_catalog, env=AWKWARD) as w:
                sent, pages = await echo_everything(w, echo)
                assert echo.tokens, "DataKitchen handed out no session token: the test lost its point"
                secrets["DataKitchen session token"] = echo.tokens[-1]
                for secret in secrets.values():  # a library that prints what it sends, at DEBUG
                    for form in on_the_wire(secret):
                        logging.getLogger("some.http.library").debug("sending %s", form)
            formatter = JsonFormatter()
            lines = "\n".join(formatter.format(r) for r in logs.records if r.name != "some.http.library")
            raw = "\n".join(r.getMessage() for r in logs.records if r.name != "some.http.library")
    finally:
        logging.getLogger().removeHandler(net)

    assert echo.echoed >= 10
    secrets.update({f"DataKitchen session token {i}": t for i, t in enumerate(echo.tokens)})
    for where, text in (("Slack", sent), ("the log lines", lines), ("the log messages", raw),
                        ("/metrics and /readyz", "\n".join(pages))):
        found = leaks(text, secrets)
        assert not found, f"{found} in {where}"
    assert "we could not use" in sent and "***" in sent
    netted_lines = netted.getvalue()
    assert netted_lines.count('"message": "sending ***"') >= len(secrets) - len(echo.tokens) + 1
    found = leaks(netted_lines, secrets)
    assert not found, f"{found} in the bot's log handler"


# -- found by a second independent pass ----------------------------------------------------------------------------


async def test_a_secret_a_provider_echoes_in_task_names_never_reaches_slack(tmp_path: Path) -> None:
    """Only run and task messages were redacted; cards and the App Home also show task and node names, raw
    statuses and run ids, all the provider's words."""
    token, password = ENV["RIVERY_TOKEN"], ENV["DK_PASSWORD"]
    async with security_world(tmp_path) as w:
        w.emulators["rivery"].state.script(RIVER, Outcome(
            result="fail", queued_s=1, running_s=2, message=f"failed with {token}",
            tasks=(f"load {token}", "clean"), failed_tasks=(f"load {token}",)))
        w.emulators["datakitchen"].state.script(DK_JOB, Outcome(
            result="fail", queued_s=1, running_s=2, message=f"refused {password}", tasks=(f"node-{password}",)))
        for name in ("leads-ods", "sales-dashboard"):
            assert (await w.command(f"run {name}")).ok
        await w.until(lambda: len(w.cards()) == 2, what="both cards")
        w.advance(5)
        for name in ("leads-ods", "sales-dashboard"):
            await w.card_saying(f"{name} failed")
        for text in ("last leads-ods", "last sales-dashboard", "status"):
            await ask(w, text)
        await w.slack.open_home("U0ALICE")
        await w.until(lambda: w.slack.home("U0ALICE") is not None, what="the Home tab")
        await w.settle(1.0)
        sent = everything_sent(w)
    assert token not in sent and password not in sent
    assert "load ***" in sent and "node-***" in sent  # shown, redacted: not dropped
