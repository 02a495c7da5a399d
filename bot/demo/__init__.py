"""``pipeline-bot demo``: the whole product on this machine, with no Slack workspace and no provider accounts.

The four provider emulators (real time, scripted outcomes), the fake Slack with its page, and the bot itself in
HTTP mode, wired as in production: see ``run.py``; the pipelines are in ``catalog.yml``.
"""

from __future__ import annotations

from bot.demo.run import run_demo

__all__ = ["run_demo"]
