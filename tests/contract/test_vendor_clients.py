"""The vendors' own clients, unmodified, against ``pipeline-bot emulate``.

DKCloudCommand (DataKitchen's CLI client, from PyPI) cannot be installed next to the bot: it pins old
requests, cryptography and typing-extensions. It lives in a venv of its own
(``scripts/dkcloudcommand-venv``, which CI's ``scripts/test`` runs and exports as
``DKCLOUDCOMMAND_PYTHON``); ``scripts/dkcloudcommand_drive.py`` drives it. Without that variable the
test is skipped with the command to run; with ``CI`` set it fails instead, so a CI run cannot pass by
skipping it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "scripts" / "dkcloudcommand_drive.py"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _vendor_python(variable: str, how: str) -> str:
    python = os.environ.get(variable, "").strip()
    if python and Path(python).is_file():
        return python
    message = f"{variable} is not set to the Python of a venv with the vendor client: {how}"
    if _in_ci():
        pytest.fail(f"{message}. CI is set, so this fails rather than skips.", pytrace=False)
    pytest.skip(message)


def _scenario(python: str, tmp_path: Path) -> Path:
    """The driver's scenario (its users and jobs), read from the driver itself."""
    text = subprocess.run(
        [python, "-c", f"import runpy; print(runpy.run_path({str(DRIVER)!r}, run_name='scenario')['SCENARIO'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    path = tmp_path / "datakitchen.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_dkcloudcommand_runs_unmodified_against_the_strict_emulator(tmp_path: Path) -> None:
    python = _vendor_python("DKCLOUDCOMMAND_PYTHON", 'export DKCLOUDCOMMAND_PYTHON="$(scripts/dkcloudcommand-venv)"')
    scenario = _scenario(python, tmp_path)
    emulator = subprocess.Popen(
        [sys.executable, "-m", "bot", "emulate", "datakitchen", "--strict", "--scenario", str(scenario)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert emulator.stdout is not None
        line = emulator.stdout.readline()
        assert "listening on" in line, emulator.stderr.read() if emulator.stderr else line
        url = line.split("listening on ")[1].split()[0]
        driven = subprocess.run(
            [python, "-W", "ignore", str(DRIVER), url], capture_output=True, text=True, timeout=120, check=False
        )
        assert driven.returncode == 0, f"{driven.stdout}\n{driven.stderr}"
        assert '{"step": "done", "ok": true}' in driven.stdout
        requests = httpx.get(f"{url}/_emulator/requests").json()
        routes = {r["route"] for r in requests}
        assert {"login", "trigger", "list", "details", "pause", "unpause", "stop", "resume"} <= routes
        list_queries = [r["query"] for r in requests if r["route"] == "list"]
        assert all(q.get("r") == "Daily_Sales" for q in list_queries)  # DKCloudCommand filters by recipe
    finally:
        emulator.terminate()
        emulator.communicate(timeout=10)
