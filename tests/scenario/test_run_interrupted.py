"""`pipeline-bot run` in Socket Mode while Slack cannot be reached: slack_sdk retries the connection for ever, and
Ctrl-C (or `docker stop`'s SIGTERM) did nothing: the stop was asked for but only read once the start had finished,
which it never did. The real CLI in a subprocess; the signal is sent once the first failed attempt is logged."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_bot_still_connecting_to_slack(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "pipelines.yml").write_text(
        'defaults: {channel: "C0123ABCD", owners: [U0123ABCD]}\n'
        "connections: {rivery: {provider: rivery, api_token: '${RIVERY_API_TOKEN}'}}\n"
        "pipelines: {leads-ods: {connection: rivery, river_id: r1}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "PIPELINES_FILE"))}
    env.update({
        "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "LOG_FORMAT": "text",
        "SLACK_BOT_TOKEN": "xoxb-0000-1111-interrupted", "SLACK_APP_TOKEN": "xapp-1-A000-0000-interrupted",
        "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/",  # nothing listens: Slack cannot be reached
        "RIVERY_API_TOKEN": "rivery-token-long-enough", "PORT": str(free_port()), "HOST": "127.0.0.1",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
    })
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--env-file", "none"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # the bot is in its connection loop once it says it failed to connect
            seen.append(line)
            if "Failed to connect" in line:
                break
        assert any("Failed to connect" in line for line in seen), "".join(seen)
        sent = time.monotonic()
        proc.send_signal(sig)
        rest, _ = proc.communicate(timeout=30)
        assert time.monotonic() - sent < 15, rest
        assert proc.returncode == 130, "".join(seen) + rest
        assert "pipeline-bot: interrupted while starting" in rest, rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
