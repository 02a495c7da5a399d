"""The emulators' console: an HTML page per run, where the demo's "Open in console" leads; all of it escaped."""

from __future__ import annotations

import httpx

from bot.emulators._core import EmulatorState, ManualClock, Outcome
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.emulators.tailer import TailerEmulator

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'


async def test_a_run_has_a_page_with_its_id_job_state_times_and_error() -> None:
    clock = ManualClock(1_700_000_000.0)
    state = EmulatorState(clock=clock)
    failing = Outcome(result="fail", queued_s=1, running_s=2, message="Table raw.orders was not found", tasks=("a",),
                      failed_tasks=("a",))
    run = state.start_run("kitchen/recipe/variation", {"day": "2024-01-31"}, outcome=failing)
    clock.advance(5)
    async with TailerEmulator(state) as emulator, httpx.AsyncClient(base_url=emulator.url) as http:
        answer = await http.get(f"/console/runs/{run.run_id}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
        page = answer.text
        assert f"Run {run.run_id}" in page and "kitchen/recipe/variation" in page
        assert '<span class="failed">failed</span>' in page
        assert "2023-11-14 22:13:21 UTC" in page and "2023-11-14 22:13:23 UTC" in page  # started, ended
        assert "Table raw.orders was not found" in page and "day=2024-01-31" in page
        # a client that appends its own path to the link (Rivery: /#/river/…) reaches the same page
        assert (await http.get(f"/console/runs/{run.run_id}/")).text == page
        listing = await http.get("/console/runs/")
        assert f'href="/console/runs/{run.run_id}"' in listing.text
        missing = await http.get("/console/runs/nope")
        assert missing.status_code == 404 and "has no run nope" in missing.text


async def test_everything_on_the_page_is_escaped() -> None:
    clock = ManualClock(1_700_000_000.0)
    state = EmulatorState(clock=clock)
    run = state.start_run(HOSTILE, {HOSTILE: HOSTILE}, outcome=Outcome(result="fail", message=HOSTILE))
    clock.advance(10)
    async with DataKitchenEmulator(state) as emulator, httpx.AsyncClient(base_url=emulator.url) as http:
        for path in (f"/console/runs/{run.run_id}", "/console/runs/", "/console/runs/%3Cscript%3E"):
            page = (await http.get(path)).text
            assert "<script>" not in page and "<img" not in page, path
        page = (await http.get(f"/console/runs/{run.run_id}")).text
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(1)&gt;" in page
