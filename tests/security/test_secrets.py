"""Secrets stay secret when providers misbehave: every provider answers errors that echo back the request it got
(its headers with the credential, its body with the password), on triggers, on status checks long enough to
raise a "cannot reach" alert, and on DataKitchen's login. Neither a secret of the configuration, nor the session
token DataKitchen handed out, nor Slack's token or signing secret, appears in anything the bot sent to Slack (replies,
cards, alerts), in its log lines, or on its /metrics and /readyz pages. ``tests/scenario/test_logs.py`` covers the
logs of an ordinary failure; this is the hostile case."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from aiohttp import web

from bot.emulators._server import EmulatorServer, json_response
from bot.ops.logs import JsonFormatter
from tests.scenario.harness import ENV
from tests.scenario.surface import OUR_FAULT, ask, everything_sent
from tests.security import Recorder, security_world

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


async def test_secrets_echoed_by_providers_never_reach_slack_logs_or_pages(tmp_path: Path) -> None:
    echo = Echo()
    with Recorder() as logs:
        async with security_world(tmp_path, prepare=echo.install) as w:
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
            sent = everything_sent(w)
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
