"""A small HTML page per run: the emulators' stand-in for a vendor's web console.

``GET /console/runs/<run id>`` shows one run (its id, job, state, start, end and error); ``GET /console/runs/``
lists the runs. The demo's catalog points ``console_url`` here (``…/console/runs/{run_id}``), so "Open in console"
on a card opens the page of that run. Everything shown is escaped: job names, parameters and error messages are
whatever a scenario or a caller put there.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import quote

from aiohttp import web

from bot.emulators._core import EmulatorState, EmuRun

__all__ = ["console_routes"]

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#1d1c1d}table{border-collapse:collapse}"
    "th,td{text-align:left;padding:.3rem .8rem;border-bottom:1px solid #ddd;vertical-align:top}"
    ".failed{color:#b3261e}.succeeded{color:#1b7f3b}pre{white-space:pre-wrap;margin:0}"
)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def console_routes(state: EmulatorState, provider: str) -> list[tuple[str, str, Handler]]:
    """The console's routes for ``build_app``: the list of runs and the page of one run."""

    async def one(request: web.Request) -> web.Response:
        run = state.runs.get(request.match_info["run"])
        if run is None:
            page = _page(provider, "No such run", f"<p>{provider} has no run {_e(request.match_info['run'])}.</p>")
            return web.Response(text=page, status=404, content_type="text/html")
        return web.Response(text=run_page(run, provider, state.now()), content_type="text/html")

    async def every(request: web.Request) -> web.Response:
        return web.Response(text=runs_page(list(state.runs.values()), provider, state.now()), content_type="text/html")

    return [
        ("GET", "/console/runs/", every),
        ("GET", "/console/runs/{run}", one),
        ("GET", "/console/runs/{run}/", one),  # a client that appends its own path to the link (Rivery: /#/river/…)
    ]


def run_page(run: EmuRun, provider: str, now: float) -> str:
    """One run, as a definition table; the error (if any) verbatim in a ``pre``."""
    phase = run.phase(now)
    ended = run.ended_at(now)
    rows = [
        ("Run", _e(run.run_id)),
        ("Pipeline", _e(run.job)),
        ("State", f'<span class="{_e(phase)}">{_e(phase)}</span>'),
        ("Started", _e(_when(run.started_at()) if now >= run.started_at() else "not yet (queued)")),
        ("Ended", _e(_when(ended) if ended is not None else "—")),
        ("Started by", "someone outside the bot (console, schedule)" if run.external else "the API"),
    ]
    if run.parameters:
        rows.append(("Parameters", "<br>".join(f"{_e(str(k))}={_e(str(v))}" for k, v in run.parameters.items())))
    if phase == "failed" and run.outcome.message:
        rows.append(("Error", f"<pre>{_e(run.outcome.message)}</pre>"))
    if phase == "failed" and run.outcome.failed_tasks:
        rows.append(("Failed tasks", _e(", ".join(run.outcome.failed_tasks))))
    table = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    back = '<p><a href="/console/runs/">All runs</a></p>'
    return _page(provider, f"Run {run.run_id}", f"<table>{table}</table>{back}")


def runs_page(runs: list[EmuRun], provider: str, now: float) -> str:
    """Every run, newest first, each linking to its page."""
    runs = sorted(runs, key=lambda r: r.created_at, reverse=True)
    rows = "".join(
        f'<tr><td><a href="/console/runs/{_e(_path(r.run_id))}">{_e(r.run_id)}</a></td><td>{_e(r.job)}</td>'
        f'<td class="{_e(r.phase(now))}">{_e(r.phase(now))}</td><td>{_e(_when(r.created_at))}</td></tr>'
        for r in runs
    )
    head = "<tr><th>Run</th><th>Pipeline</th><th>State</th><th>Created</th></tr>"
    body = f"<table>{head}{rows}</table>" if runs else "<p>No runs yet.</p>"
    return _page(provider, "Runs", body)


def _page(provider: str, title: str, body: str) -> str:
    heading = f"{_e(provider)} console (emulated): {_e(title)}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{heading}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{heading}</h1>{body}</body></html>"
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _path(run_id: str) -> str:
    return quote(run_id, safe="")


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
