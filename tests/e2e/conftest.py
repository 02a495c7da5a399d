"""Browser tests of ``pipeline-bot demo``: Playwright for Python drives Debian's Chromium, launched from its
executable path (Playwright's own browser download is never used).

Without Chromium or Playwright the tests are skipped with a message naming what to install; with ``CI`` set
in the environment they fail instead, so a CI run can never pass by silently skipping them. The demo runs
once for these tests as a subprocess (``python -m bot demo --port 0``), exactly as a newcomer starts it.
Screenshots of each step go to ``test-artifacts/e2e/`` (gitignored), with the demo's own output.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
INSTALL = ("install Debian's Chromium and Playwright for Python: `apt-get install -y chromium` and "
           "`pip install -e '.[browser]'` (no `playwright install`: the tests launch /usr/bin/chromium)")
START_TIMEOUT = 60.0


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing() -> list[str]:
    found = []
    if not CHROMIUM.is_file():
        found.append(f"{CHROMIUM} is missing")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        found.append("the playwright package is missing")
    return found


@pytest.fixture(scope="session", autouse=True)
def _browser_available() -> None:
    problems = missing()
    if problems:
        message = f"browser tests need Chromium and Playwright: {'; '.join(problems)}. To run them, {INSTALL}."
        if in_ci():
            pytest.fail(f"{message} CI is set, so they fail rather than skip.", pytrace=False)
        pytest.skip(message)


class DemoProcess:
    """``python -m bot demo`` in a subprocess; its output is kept (and written to the artifacts)."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "PIPELINES_FILE"))}
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "demo", "--host", "127.0.0.1", "--port", "0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self.url: str | None = None
        self._seen = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            found = re.search(r"pipeline-bot demo: open (http://\S+)", line)
            if found and self.url is None:
                self.url = found.group(1)
                self._seen.set()
        self._seen.set()

    def wait_for_url(self) -> str:
        self._seen.wait(START_TIMEOUT)
        if self.url is None:
            self.stop()
            raise RuntimeError("pipeline-bot demo did not print its URL:\n" + "".join(self.lines))
        return self.url

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "demo-output.txt").write_text("".join(self.lines), encoding="utf-8")


@pytest.fixture(scope="package")  # stopped when the browser tests are done, not at the end of the whole suite
def demo() -> Iterator[DemoProcess]:
    process = DemoProcess()
    try:
        process.wait_for_url()
        yield process
    finally:
        process.stop()
    assert process.proc.returncode == 0, "pipeline-bot demo did not stop cleanly on SIGTERM:\n" + "".join(process.lines)


@pytest.fixture(scope="package")
def demo_url(demo: DemoProcess) -> str:
    assert demo.url is not None
    return demo.url


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for the browser tests (each test gets its own context); they share the session's event loop."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


class Shots:
    """Numbered screenshots of one test: ``test-artifacts/e2e/<test>-<n>-<step>.png``."""

    def __init__(self, page: Page, test: str) -> None:
        self.page, self.test, self.count = page, test, 0

    async def __call__(self, step: str) -> Path:
        self.count += 1
        path = ARTIFACTS / f"{self.test}-{self.count:02d}-{step}.png"
        await self.page.screenshot(path=str(path), animations="disabled")
        return path


@pytest_asyncio.fixture(loop_scope="session")
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page at 1400×900; any JavaScript error on it fails the test."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    # expect()'s own wait is 5 s by default, apart from the context's: a busy CI machine once took longer to show a
    # workflow's end than that (the test's own RUN_TIMEOUT waits say where a run needs more)
    from playwright.async_api import expect  # imported where used, as the rest of Playwright here

    expect.set_options(timeout=15_000)
    opened = await context.new_page()
    errors: list[Any] = []
    opened.on("pageerror", lambda error: errors.append(error))
    yield opened
    await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def shots(page: Page, request: pytest.FixtureRequest) -> Shots:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    return Shots(page, name)
