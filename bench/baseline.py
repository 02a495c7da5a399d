"""The baseline every figure is compared with: what a team writes today from the vendors' docs.

Rivery's "run and check_run" article (``seeds/rivery-run-and-check-run.txt``) and the other vendors' docs
suggest the same loop: trigger the job, then check the run's status on its own every so often, and act on
each answer ("trigger an alert"). Written for Slack, a team posts what each check said. Two forms:

- ``vendor_loop``: that loop for one run. ``python -m bench.baseline track`` runs it for many runs at once
  in its own process (one asyncio task per run, one shared HTTP client per provider, which is the generous
  version: most scripts are one process per run with ``requests`` and ``time.sleep``).
- ``python -m bench.baseline serve``: a slash-command endpoint as Slack's samples write it: verify the
  signature, call the provider, answer with what it said. Its ack waits for the provider.

The provider calls use the bot's own clients, so the comparison is about the loop, not about HTTP code.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

__all__ = ["BaselineStats", "post_message", "vendor_loop"]


class BaselineStats:
    def __init__(self) -> None:
        self.checks = 0
        self.posts = 0
        self.post_errors = 0
        self.status_errors = 0
        self.finished = 0


async def post_message(http: httpx.AsyncClient, token: str, channel: str, text: str, stats: BaselineStats) -> None:
    """chat.postMessage, as a script does it: no pacing, a 429 is just an error."""
    try:
        answer = await http.post("chat.postMessage", json={"channel": channel, "text": text},
                                 headers={"Authorization": f"Bearer {token}"})
        if answer.status_code == 200 and answer.json().get("ok"):
            stats.posts += 1
        else:
            stats.post_errors += 1
    except httpx.HTTPError:
        stats.post_errors += 1


async def vendor_loop(
    get_status: Callable[[], Awaitable[Any]],
    post: Callable[[str], Awaitable[None]],
    *,
    name: str,
    interval: float,
    stats: BaselineStats,
    first_wait: float = 0.0,
    until: float | None = None,
) -> None:
    """Check one run every ``interval`` seconds and post what each check said, until it ends (or ``until``)."""
    await asyncio.sleep(first_wait)
    while until is None or time.time() < until:
        try:
            status = await get_status()
        except Exception as exc:
            stats.status_errors += 1
            await post(f"{name}: could not check the run ({type(exc).__name__})")
            await asyncio.sleep(interval)
            continue
        stats.checks += 1
        await post(f"{name}: {status.raw_status} {status.message}".strip())
        if status.final:
            stats.finished += 1
            return
        await asyncio.sleep(interval)


# -- track: many runs, one loop each ----------------------------------------------------------------------------


async def _track(args: argparse.Namespace, catalog_text: str, runs: list[dict[str, Any]]) -> int:
    from bench.common import parse_catalog_text
    from bot.service.clients import ClientPool

    catalog = parse_catalog_text(catalog_text)
    pool = ClientPool.for_catalog(catalog)
    stats = BaselineStats()
    until = time.time() + args.duration
    async with httpx.AsyncClient(base_url=args.slack_url, timeout=30,
                                 limits=httpx.Limits(max_connections=200)) as slack:

        def loop(run: Mapping[str, Any]) -> Awaitable[None]:
            client = pool.client(run["connection"])
            job = pool.job(run["provider"], run["job"])

            async def get_status() -> Any:
                return await client.get_status(job, run["provider_run_id"])

            async def post(text: str) -> None:
                await post_message(slack, args.token, run["channel"], text, stats)

            return vendor_loop(get_status, post, name=run["pipeline"], interval=args.interval, stats=stats,
                               first_wait=random.uniform(0, args.interval), until=until)

        await asyncio.gather(*(loop(r) for r in runs))
    await pool.aclose()
    print(json.dumps(vars(stats)))
    return 0


# -- serve: a slash command that calls the provider before it answers -------------------------------------------


def _verified(secret: str, request_ts: str, body: bytes, given: str) -> bool:
    if not request_ts.isdigit() or abs(time.time() - int(request_ts)) > 300:
        return False
    base = b"v0:" + request_ts.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


async def _serve(args: argparse.Namespace, catalog_text: str) -> int:
    from bench.common import parse_catalog_text
    from bot.service.clients import ClientPool

    catalog = parse_catalog_text(catalog_text)
    pool = ClientPool.for_catalog(catalog)

    async def events(request: web.Request) -> web.Response:
        body = await request.read()
        if not _verified(args.signing_secret, request.headers.get("X-Slack-Request-Timestamp", ""), body,
                         request.headers.get("X-Slack-Signature", "")):
            return web.Response(status=401)
        form = urllib.parse.parse_qs(body.decode())
        if "payload" in form:  # a button: the sample answers after doing what it says
            payload = json.loads(form["payload"][0])
            value = (payload.get("actions") or [{}])[0].get("value") or ""
            pipeline = catalog.pipelines.get(value) or next(iter(catalog.pipelines.values()))
        else:
            words = (form.get("text") or [""])[0].split()
            name = words[1] if len(words) > 1 else ""
            pipeline = catalog.pipelines.get(name) or next(iter(catalog.pipelines.values()))
        client = pool.client(pipeline.connection)
        try:
            started = await client.trigger(pipeline.job, {})
            text = f"Started {pipeline.name}: run {started.run_id}"
        except Exception as exc:
            text = f"Could not start {pipeline.name}: {exc}"
        return web.json_response({"response_type": "ephemeral", "text": text})

    app = web.Application()
    app.router.add_post("/slack/events", events)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    print("ready", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await pool.aclose()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    track = sub.add_parser("track", help="one vendor loop per run, for --duration seconds")
    track.add_argument("--catalog", required=True)
    track.add_argument("--runs", required=True, help="JSON list of {pipeline, provider, connection, job, "
                       "provider_run_id, channel}")
    track.add_argument("--slack-url", required=True, help="Web API base URL, ending in /api/")
    track.add_argument("--token", required=True)
    track.add_argument("--interval", type=float, default=30.0)
    track.add_argument("--duration", type=float, default=60.0)
    serve = sub.add_parser("serve", help="a slash-command endpoint that calls the provider before it acks")
    serve.add_argument("--catalog", required=True)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--signing-secret", required=True)
    args = parser.parse_args(argv)
    catalog_text = Path(args.catalog).read_text()
    if args.mode == "track":
        return asyncio.run(_track(args, catalog_text, json.loads(Path(args.runs).read_text())))
    return asyncio.run(_serve(args, catalog_text))


if __name__ == "__main__":
    sys.exit(main())
