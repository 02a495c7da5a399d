"""What answers at the Slack API when Slack does not (eighteenth independent pass, b).

A gateway in front of the Slack API whose JSON ``error`` looks like a Slack code (lower case, short) but carries a
request id (``{"ok": false, "error": "upstream_timeout_req_4f9c…"}``, a new one for each request): each was taken
for Slack's code, a new ``outcome`` label of ``pipeline_bot_slack_calls_total`` per failed call (the series of
/metrics without bound), and said as "Slack answered upstream_timeout_req_…" by ``check --online``. A token written
in lower case passed the same way. Slack's codes are lower-case words joined by ``_``: no digit, ``-`` or ``.``.
Run with a real local server as the gateway, the real Slack SDK, the real ``Deliverer`` on a SQLite file."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from types import SimpleNamespace

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery.answers import slack_answer, slack_error
from bot.delivery.sender import Deliverer
from bot.ops.metrics import Metrics
from bot.store.records import OutboxKind
from bot.store.store import Store
from tests.security.test_slack_answers_attack17b import gateway

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
TOKEN = "xoxb-1234567890-0987654321-abcdefghijklmnop"


async def test_a_gateways_error_with_a_request_id_is_not_a_new_metrics_series_per_call(sqlite_store: Store) -> None:
    ids = itertools.count(0x4F9C2A10)

    async def request_ids(request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": False, "error": f"upstream_timeout_req_{next(ids):x}"}, status=504)

    for n in range(5):
        await sqlite_store.outbox.enqueue(f"notice-{n}", kind=OutboxKind.POST, text="hello", channel=f"C0CH{n}",
                                          now=NOW)
    metrics = Metrics()
    async with gateway(request_ids) as url:
        deliverer = Deliverer(sqlite_store, AsyncWebClient(token="xoxb-test-token", base_url=url), owner="test",
                              now=lambda: NOW, metrics=metrics)
        await deliverer.tick()
    shown = await metrics.render()
    series = [line for line in shown.splitlines() if line.startswith("pipeline_bot_slack_calls_total{")]
    assert series, shown
    assert not any("upstream_timeout_req" in line for line in series), series
    assert len(series) == 1, series


def test_a_real_slack_code_is_still_slacks_and_a_look_alike_is_not() -> None:
    def answer(data: object) -> SimpleNamespace:
        return SimpleNamespace(data=data, status_code=200, headers={"content-type": "application/json"})

    for code in ("invalid_auth", "not_in_channel", "ratelimited", "restricted_action_read_only_channel"):
        assert slack_error(answer({"ok": False, "error": code})) == code
        assert slack_answer(answer({"ok": False, "error": code})) == f"Slack answered {code}"
    for other in ("upstream_timeout_req_4f9c2a10", "req-6b1f0c2e-9d7a", TOKEN, "gw.denied.1"):
        assert slack_error(answer({"ok": False, "error": other})) == "", other
        assert slack_answer(answer({"ok": False, "error": other})).startswith("not Slack's answer: HTTP 200"), other


async def test_a_gateways_needed_is_no_scope_to_add_unless_it_reads_as_scopes() -> None:
    """A ``missing_scope`` whose ``needed`` is the gateway's own text (megabytes, lines of its own): it was quoted
    whole as the scope to add, by ``check --online`` and the start-up."""
    from bot.catalog.load import parse_catalog
    from bot.checks.online import online_checks

    async def odd_needed(request: web.Request) -> web.StreamResponse:
        needed = "chat:write\n  ✓ Slack auth.test: ok " + "x" * 200_000
        return web.json_response({"ok": False, "error": "missing_scope", "needed": needed}, status=200)

    async def real_needed(request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": False, "error": "missing_scope", "needed": "users:read.email,chat:write"})

    catalog = parse_catalog({
        "version": 1,
        "defaults": {"channel": "#data-alerts", "owners": ["U0ALICE"], "allow_run": ["*"]},
        "connections": {"rivery": {"provider": "rivery", "base_url": "http://127.0.0.1:9/",
                                   "api_token": "${RIVERY_TOKEN}"}},
        "pipelines": {"leads": {"connection": "rivery", "river_id": "r1"}},
    }, {"RIVERY_TOKEN": "t" * 40})
    for handler, scope in ((odd_needed, None), (real_needed, "users:read.email,chat:write")):
        async with gateway(handler) as url:
            results = await online_checks(catalog, AsyncWebClient(token="xoxb-test-token", base_url=url), deadline=5)
        auth = next(r for r in results if r.item == "Slack auth.test")
        assert not auth.ok
        assert len(auth.said) + len(auth.fix) < 1000 and "\n" not in auth.said + auth.fix, auth.said[:300]
        if scope:
            assert scope in auth.said and scope in auth.fix, auth
        else:
            assert "add the scope it needs to the app" in auth.fix, auth
