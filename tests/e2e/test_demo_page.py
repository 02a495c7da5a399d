"""``pipeline-bot demo`` in a real browser: what a newcomer does first, step by step, with a screenshot of each.

Each test works in its own channel of the one demo process, so they do not depend on each other's order.
Waits are for text on the page (Playwright's ``expect``), never fixed sleeps.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil

import pytest

from tests.e2e.conftest import ROOT, Shots

with contextlib.suppress(ImportError):  # without it the conftest skips these tests (or, under CI, fails them)
    from playwright.async_api import Locator, Page, expect

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the session's one browser lives in the session's loop

PROVIDERS = {
    "leads-ods": "Rivery",
    "iowa-liquor-pda": "Tailer",
    "budget-consolidation": "InVision",
    "sales-dashboard": "DataKitchen",
}
RUN_TIMEOUT = 30_000  # ms: a demo run takes about five seconds; generous for a loaded CI machine
DOCS_SCREENSHOT = ROOT / "docs" / "demo.png"
DOCS_ALERT_SCREENSHOT = ROOT / "docs" / "alert.png"  # an alert's whole story, once resolved
DOCS_HOME_SCREENSHOT = ROOT / "docs" / "home.png"  # the App Home of a person who owns pipelines


async def open_page(page: Page, url: str, channel: str) -> None:
    await page.goto(f"{url}?channel={channel}")
    await expect(page.locator("#live")).to_have_text("live")


async def command(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    await box.fill(text)
    await box.press("Enter")


async def go_to(page: Page, channel: str) -> None:
    await page.locator("#channel-list").get_by_role("button", name=channel).click()
    await expect(page.locator("#title")).to_contain_text(channel)


def card(page: Page, name: str, pane: str = "#messages") -> Locator:
    """The card(s) of ``name`` in the channel pane: messages whose header names the pipeline."""
    header = page.locator(".bk-header", has_text=re.compile(rf"\b{re.escape(name)}\b"))
    return page.locator(f"{pane} .msg", has=header)


async def test_a_run_of_each_provider_reaches_its_final_state(page: Page, demo_url: str, shots: Shots) -> None:
    await open_page(page, demo_url, "C0GENERAL")
    await shots("page")
    for name in PROVIDERS:
        await command(page, f"/pipeline run {name}")
    for name in PROVIDERS:
        await expect(card(page, name)).to_have_count(1)  # each run's card appears at once…
    await shots("cards-posted")
    for name, provider in PROVIDERS.items():
        one = card(page, name)
        await expect(one.locator(".bk-header")).to_have_text(f"✅ {name} succeeded", timeout=RUN_TIMEOUT)
        await expect(one).to_contain_text(provider)
        await expect(one).to_contain_text("(edited)")
        await expect(card(page, name)).to_have_count(1)  # …and is edited in place, never posted again
    await shots("all-succeeded")


async def test_a_failure_alerts_its_owners_and_retry_starts_a_new_run(
    page: Page, demo_url: str, shots: Shots
) -> None:
    await open_page(page, demo_url, "C0OPS")
    await command(page, "/pipeline run orders-eu")
    failed = card(page, "orders-eu")
    await expect(failed.locator(".bk-header")).to_have_text("❌ orders-eu failed", timeout=RUN_TIMEOUT)
    await expect(failed).to_contain_text("load_orders")  # the failed task
    await shots("card-failed")

    await go_to(page, "data-alerts")  # the pipeline's alert channel
    announced = page.locator("#messages .msg", has_text="orders-eu on Rivery failed")
    await expect(announced).to_have_count(1, timeout=RUN_TIMEOUT)
    alert = page.locator(f'#messages .msg[data-ts="{await announced.get_attribute("data-ts")}"]')
    await expect(alert).to_contain_text("cc @bob @data-eng")  # its owners: a person and a user group
    await expect(alert.locator(".mention")).to_have_count(3)  # they, and who started the run ("Started by @…")
    # the provider's own words, shown as text: Slack's escapes undone once, never read as markup
    await expect(alert).to_contain_text("(job <bqjob_r5e1c0ffee_0001> & 1 retry)")
    await shots("alert-with-owners")

    await alert.get_by_role("button", name="Acknowledge").click()
    await expect(alert).to_contain_text("acknowledged by @", timeout=RUN_TIMEOUT)  # its header and timeline
    await alert.get_by_role("button", name="Retry").click()
    await expect(alert).to_contain_text("recovered", timeout=RUN_TIMEOUT)  # the retry succeeded: the alert says so
    await expect(alert.get_by_role("button", name="Retry")).to_have_count(0)
    await expect(alert).to_contain_text("Timeline")  # its story kept: the error, owners and what happened
    await expect(alert).to_contain_text("(job <bqjob_r5e1c0ffee_0001> & 1 retry)")
    await expect(alert).to_contain_text("resolved by #")
    alert_shot = await shots("alert-recovered")

    await go_to(page, "data-ops")  # the new run's card joins the first one's channel
    cards = card(page, "orders-eu")
    await expect(cards).to_have_count(2)
    await expect(cards.last.locator(".bk-header")).to_have_text("✅ orders-eu succeeded", timeout=RUN_TIMEOUT)
    await expect(cards.last).to_contain_text("Retry of #")
    await expect(cards.first).to_contain_text("Retried as #")
    await cards.first.get_by_role("button", name=re.compile(r"^\d+ repl")).click()
    await expect(page.locator("#thread-messages")).to_contain_text("@Alice retried this as run #")
    await shots("retried")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(await shots("readme"), DOCS_SCREENSHOT)
        shutil.copyfile(alert_shot, DOCS_ALERT_SCREENSHOT)


async def test_a_failures_thread_shows_its_log_the_full_log_pages_and_resume_picks_it_up(
    page: Page, demo_url: str, shots: Shots
) -> None:
    """churn-scores (DataKitchen) succeeds, then fails: its thread shows the provider's log and what changed since
    that success; Full log pages through the whole log in a modal; Resume starts it again from the failed step."""
    await open_page(page, demo_url, "C0RANDOM")
    await command(page, "/pipeline run churn-scores as_of=2026-11-01")
    cards = card(page, "churn-scores")
    await expect(cards.first.locator(".bk-header")).to_have_text("✅ churn-scores succeeded", timeout=RUN_TIMEOUT)
    await command(page, "/pipeline run churn-scores as_of=2026-11-02")
    await expect(cards).to_have_count(2)
    failed = cards.last
    await expect(failed.locator(".bk-header")).to_have_text("❌ churn-scores failed", timeout=RUN_TIMEOUT)

    await failed.get_by_role("button", name=re.compile(r"^\d+ repl")).click(timeout=RUN_TIMEOUT)
    thread = page.locator("#thread-messages")
    note = thread.locator(".msg", has_text="From DataKitchen's log")
    await expect(note).to_have_count(1, timeout=RUN_TIMEOUT)  # read once the failure's details are out
    await expect(note).to_contain_text("[score_customers] ERROR node score_customers: Model scoring failed")
    await expect(note).to_contain_text("(feature table <crm.features> & v2)")  # the log's words shown as text
    await expect(note).to_contain_text("Since the last success")
    await expect(note).to_contain_text(re.compile(r"as_of\W+2026-11-01\W+then, \W*2026-11-02\W+now"))
    await expect(note).to_contain_text(re.compile(r"Failed now, passed then: \W*score_customers"))
    await shots("thread-with-log")

    await note.get_by_role("button", name="Full log").click()
    modal = page.get_by_role("dialog", name=re.compile(r"^Log of run #\d+$"))
    where = modal.get_by_text(re.compile(r"^Lines \d+–\d+ of \d+ \(page \d+ of \d+\)$"))
    await expect(where).to_be_visible(timeout=RUN_TIMEOUT)  # the last page, read from DataKitchen
    last, total, number, pages = _page_shown(await where.inner_text())
    assert last == total and number == pages >= 5, (last, total, number, pages)  # a 250-line log: 50 a page
    await expect(modal).to_contain_text("Model scoring failed")
    await expect(modal.get_by_role("button", name="Later ▶")).to_have_count(0)  # nothing after the end
    await shots("full-log-last-page")
    await modal.get_by_role("button", name="◀ Earlier").click()
    await expect(where).to_contain_text(f"(page {pages - 1} of {pages})")
    earlier_last, _, _, _ = _page_shown(await where.inner_text())
    assert earlier_last < last - 40, (earlier_last, last)
    await expect(modal).to_contain_text("1000 rows copied")  # the log's body, not its end
    await expect(modal).not_to_contain_text("Model scoring failed")
    await shots("full-log-earlier-page")
    await modal.get_by_role("button", name="Later ▶").click()
    await expect(where).to_contain_text(f"(page {pages} of {pages})")
    await expect(modal).to_contain_text("Model scoring failed")
    await modal.get_by_role("button", name="Close", exact=True).click()
    await expect(modal).to_be_hidden()

    await note.get_by_role("button", name="Resume from the failed step").click()
    await expect(cards).to_have_count(3, timeout=RUN_TIMEOUT)
    await expect(cards.last).to_contain_text("Retry of #")
    await expect(cards.last.locator(".bk-header")).to_have_text("✅ churn-scores succeeded", timeout=RUN_TIMEOUT)
    await shots("resumed")


async def test_a_rivery_failures_thread_shows_rivery_s_log_and_what_changed_since_the_last_success(
    page: Page, demo_url: str, shots: Shots
) -> None:
    """refunds-us (Rivery, legacy API) succeeds, then fails: its thread shows the lines of Rivery's log
    (``activities/runs/logs``, prepared over a 202 first) and what changed since that success; Full log pages it."""
    await open_page(page, demo_url, "C0RANDOM")
    await command(page, "/pipeline run refunds-us")
    cards = card(page, "refunds-us")
    await expect(cards.first.locator(".bk-header")).to_have_text("✅ refunds-us succeeded", timeout=RUN_TIMEOUT)
    await command(page, "/pipeline run refunds-us")
    await expect(cards).to_have_count(2)
    failed = cards.last
    await expect(failed.locator(".bk-header")).to_have_text("❌ refunds-us failed", timeout=RUN_TIMEOUT)

    await failed.get_by_role("button", name=re.compile(r"^\d+ repl")).click(timeout=RUN_TIMEOUT)
    thread = page.locator("#thread-messages")
    note = thread.locator(".msg", has_text="From Rivery's log")
    await expect(note).to_have_count(1, timeout=RUN_TIMEOUT)
    await expect(note).to_contain_text("ERROR load_refunds Failed: Load failed: Snowflake error")
    await expect(note).to_contain_text("(file <refunds_1107.csv> & row 42)")  # the log's words shown as text
    await expect(note).to_contain_text("activities/runs/logs")  # where the lines come from
    await expect(note).to_contain_text("Since the last success")
    await expect(note).to_contain_text(re.compile(r"Failed now, passed then: \W*task 2"))  # legacy tasks: numbered
    await expect(note.get_by_role("button", name="Resume from the failed step")).to_have_count(0)  # not on Rivery
    await shots("rivery-thread-with-log")

    await note.get_by_role("button", name="Full log").click()
    modal = page.get_by_role("dialog", name=re.compile(r"^Log of run #\d+$"))
    where = modal.get_by_text(re.compile(r"^Lines \d+–\d+ of \d+ \(page \d+ of \d+\)$"))
    await expect(where).to_be_visible(timeout=RUN_TIMEOUT)  # the last page, read from Rivery again
    last, total, number, pages = _page_shown(await where.inner_text())
    assert last == total and number == pages >= 5, (last, total, number, pages)
    await expect(modal).to_contain_text("Snowflake error")
    await modal.get_by_role("button", name="◀ Earlier").click()
    await expect(where).to_contain_text(f"(page {pages - 1} of {pages})")
    await expect(modal).to_contain_text("1000 rows copied")  # the log's body, not its end
    await expect(modal).not_to_contain_text("Snowflake error")
    await shots("rivery-full-log-earlier-page")
    await modal.get_by_role("button", name="Close", exact=True).click()
    await expect(modal).to_be_hidden()


def _page_shown(where: str) -> tuple[int, int, int, int]:
    """The last line, the log's lines, the page and the pages of a Full log page's 'Lines a–b of n (page p of q)'."""
    found = re.search(r"Lines \d+–(\d+) of (\d+) \(page (\d+) of (\d+)\)", where)
    assert found, where
    last, total, number, pages = (int(g) for g in found.groups())
    return last, total, number, pages


async def test_the_run_modal_takes_parameters(page: Page, demo_url: str, shots: Shots) -> None:
    await open_page(page, demo_url, "C0RANDOM")
    await command(page, "/pipeline run")
    modal = page.get_by_role("dialog", name="Run a pipeline")
    await expect(modal).to_be_visible()
    await modal.get_by_role("button", name="Run", exact=True).click()  # nothing chosen: flagged, as Slack's client does
    await expect(modal).to_contain_text("Please complete this required field.")
    await shots("modal-open")

    await modal.get_by_label("Pipeline", exact=True).select_option("sales-dashboard")
    date = modal.get_by_label("source_date")  # the bot redraws the modal with this pipeline's parameters
    await expect(date).to_be_visible()
    await expect(modal).not_to_contain_text("Please complete this required field.")
    await date.fill("2025-03-31")
    await modal.get_by_label("infrastructure").select_option("large")
    await shots("modal-filled")
    await modal.get_by_role("button", name="Run", exact=True).click()
    await expect(modal).to_be_hidden()

    started = card(page, "sales-dashboard")
    await expect(started).to_have_count(1)
    await expect(started).to_contain_text("source_date=2025-03-31")
    await expect(started).to_contain_text("infrastructure=large")
    await expect(started.locator(".bk-header")).to_have_text("✅ sales-dashboard succeeded", timeout=RUN_TIMEOUT)
    await shots("run-from-modal-succeeded")


async def test_a_stuck_run_warns_its_owners_and_is_canceled_after_confirming(
    page: Page, demo_url: str, shots: Shots
) -> None:
    await open_page(page, demo_url, "C0OPS")
    await command(page, "/pipeline run inventory-snapshot")
    running = card(page, "inventory-snapshot")
    await expect(running.locator(".bk-header")).to_have_text(re.compile("inventory-snapshot is running$"),
                                                             timeout=RUN_TIMEOUT)

    await running.get_by_role("button", name=re.compile(r"^\d+ repl")).click(timeout=RUN_TIMEOUT)  # past 10 s
    thread = page.locator("#thread-messages")
    await expect(thread).to_contain_text("It may be stuck")
    await expect(thread).to_contain_text("cc @Carol C. @data-oncall")
    # the card says it too, in its header, not only in its thread
    await expect(running.locator(".bk-header")).to_have_text(re.compile("⏳ inventory-snapshot may be stuck$"))
    await shots("stuck-warning")

    await running.get_by_role("button", name="Cancel", exact=True).click()
    dialog = page.get_by_role("alertdialog", name="Cancel this run?")
    await expect(dialog).to_be_visible()  # Slack's confirm dialog, before anything is sent
    await shots("confirm-dialog")
    await dialog.get_by_role("button", name="Cancel run").click()
    await expect(running.locator(".bk-header")).to_have_text(re.compile("inventory-snapshot was canceled$"),
                                                             timeout=RUN_TIMEOUT)
    await shots("canceled")


async def test_app_home_shows_runs_in_flight_for_each_person(page: Page, demo_url: str, shots: Shots) -> None:
    await open_page(page, demo_url, "C0ALERTS")
    await command(page, "/pipeline run inventory-snapshot")  # it never ends: in flight for as long as we look
    await expect(card(page, "inventory-snapshot")).to_have_count(1)

    await page.get_by_role("button", name="pipeline-bot").click()
    home = page.locator("#home")
    await expect(home.locator(".bk-header")).to_have_text("Pipelines")
    await expect(home).to_contain_text("In flight")
    await expect(home).to_contain_text("inventory-snapshot")
    await expect(home).to_contain_text("My pipelines")  # hers: owned by name or through data-eng
    await home.get_by_role("button", name="Refresh").click()  # redraws the tab in place
    await expect(home.locator(".bk-header")).to_have_text("Pipelines")
    await expect(home).to_contain_text("inventory-snapshot")
    home_shot = await shots("home-alice")
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(home_shot, DOCS_HOME_SCREENSHOT)

    await page.get_by_label("You are").select_option("U0BOB")  # the Home tab is published per person
    await expect(page).to_have_url(re.compile(r"user=U0BOB"))
    await expect(home.locator(".bk-header")).to_have_text("Pipelines")
    await expect(home).to_contain_text("inventory-snapshot")
    await shots("home-bob")

    await page.get_by_label("You are").select_option("U0CAROL")  # carol owns the scheduled budget-consolidation
    await expect(page).to_have_url(re.compile(r"user=U0CAROL"))
    await expect(home).to_contain_text("budget-consolidation")
    await expect(home).to_contain_text("next run")


async def test_mrkdwn_is_rendered_faithfully_and_safely(page: Page, demo_url: str) -> None:
    await open_page(page, demo_url, "C0GENERAL")
    cases = {
        "fmt": "*bold* _it_ ~gone~ `a<b` and snake_case_name",
        "refs": "<@U0BOB> <!subteam^S0DATAENG> <#C0OPS|data-ops> <!date^1700000000^{date_short}|Nov 14, 2023> "
                "<https://example.com/a?b=1&amp;c=2|the docs>",
        "hostile": "<javascript:alert(1)|click> <https://x.test/\"onmouseover=\"alert(1)|x> "
                   "&lt;img src=x onerror=alert(1)&gt; <script>alert(1)</script> <!channel>",
    }
    rendered = await page.evaluate(
        """(cases) => {
            const out = {};
            for (const [key, text] of Object.entries(cases)) {
                const box = document.createElement("div");
                box.innerHTML = window.slackPage.mrkdwn(text);
                const tags = [...box.querySelectorAll("*")].map((e) => e.tagName.toLowerCase());
                const handlers = [...box.querySelectorAll("*")].flatMap(
                    (e) => [...e.attributes].map((a) => a.name).filter((n) => n.startsWith("on")));
                const links = [...box.querySelectorAll("a")].map((a) => a.getAttribute("href"));
                out[key] = {text: box.textContent, html: box.innerHTML, tags, handlers, links};
            }
            return out;
        }""",
        cases,
    )
    fmt, refs, hostile = rendered["fmt"], rendered["refs"], rendered["hostile"]
    assert "<b>bold</b>" in fmt["html"] and "<i>it</i>" in fmt["html"] and "<s>gone</s>" in fmt["html"]
    assert "<code>a&lt;b</code>" in fmt["html"] and "snake_case_name" in fmt["text"]
    assert refs["text"].startswith("@bob @data-eng #data-ops Nov 14, 2023 the docs")
    assert refs["links"] == ["https://example.com/a?b=1&c=2"]
    assert set(hostile["tags"]) <= {"a", "span"} and hostile["handlers"] == []
    assert [link for link in hostile["links"] if not link.startswith("https://")] == []
    assert "<img src=x onerror=alert(1)>" in hostile["text"]  # shown as the text it is
    assert "<script>alert(1)</script>" in hostile["text"]
    assert "javascript:" not in " ".join(hostile["links"])
    assert "@channel" in hostile["text"]


async def test_the_console_link_of_a_card_opens_the_page_of_that_run(page: Page, demo_url: str, shots: Shots) -> None:
    await open_page(page, demo_url, "C0GENERAL")
    before = await card(page, "iowa-liquor-pda").count()
    await command(page, "/pipeline run iowa-liquor-pda")
    # this run's card, pinned by its ts: a run of the pipeline found later (the demo's own traffic, runs started by
    # earlier tests) posts a card of its own, and ``.last`` read at the click would be that one
    mine = card(page, "iowa-liquor-pda").nth(before)
    await expect(mine).to_be_visible(timeout=RUN_TIMEOUT)
    ran = page.locator(f'#messages .msg[data-ts="{await mine.get_attribute("data-ts")}"]')
    await expect(ran.locator(".bk-header")).to_have_text("✅ iowa-liquor-pda succeeded", timeout=RUN_TIMEOUT)
    async with page.context.expect_page() as opened:
        await ran.get_by_role("button", name="Open in console").click()
    console = await opened.value
    await console.wait_for_load_state()
    found = re.search(r"/console/runs/([^/?#]+)", console.url)
    assert found, console.url  # the run's own page, not a list of every run
    run_id = found.group(1)
    await expect(console.locator("h1")).to_have_text(f"tailer console (emulated): Run {run_id}")
    table = console.locator("table")
    await expect(table).to_contain_text("000099_iowa_liquor_prepare_pda_DEV")  # the job of this run
    await expect(table).to_contain_text("succeeded")
    await expect(table).to_contain_text("Started")
    await console.close()


async def test_a_workflow_waits_for_an_approval_and_a_schedule_is_listed(page: Page, demo_url: str, shots: Shots) -> None:
    await open_page(page, demo_url, "C0OPS")
    await command(page, "/pipeline run daily-sales")
    flow = page.locator("#messages .msg", has=page.locator(".bk-header", has_text="daily-sales"))
    await expect(flow).to_have_count(1)
    approve = flow.get_by_role("button", name="Approve approve")
    await expect(approve).to_be_visible(timeout=RUN_TIMEOUT)  # leads-ods, then iowa-liquor-pda, then the question
    await expect(flow).to_contain_text("Numbers look right? Publish?")
    await shots("workflow-waiting")
    await approve.click()
    await expect(flow.locator(".bk-header")).to_have_text(re.compile(r"^✅ daily-sales succeeded"), timeout=RUN_TIMEOUT)
    await shots("workflow-succeeded")

    messages = page.locator("#messages .msg")
    shown = await messages.count()
    await command(page, "/pipeline schedules")
    await expect(messages).to_have_count(shown + 1)
    await expect(messages.last).to_contain_text("budget-consolidation")  # every other minute: it fires soon
    await expect(messages.last).to_contain_text("*/2 * * * *")


async def help_examples(page: Page) -> list[str]:
    """Every example ``/pipeline help <command>`` shows, for every command ``/pipeline help`` lists."""
    messages = page.locator("#messages .msg")
    shown = await messages.count()
    await command(page, "/pipeline help")
    await expect(messages).to_have_count(shown + 1)
    listed = re.findall(r"^/pipeline (\S+)", await messages.last.inner_text(), flags=re.MULTILINE)
    assert "run" in listed and "watch" in listed and "schedules" in listed, listed
    found: list[str] = []
    for name in dict.fromkeys(listed):
        shown = await messages.count()
        await command(page, f"/pipeline help {name}")
        await expect(messages).to_have_count(shown + 1)
        found += re.findall(r"^• (/pipeline .+)$", await messages.last.inner_text(), flags=re.MULTILINE)
    return found


async def test_every_example_of_help_works_in_the_demo(page: Page, demo_url: str, shots: Shots) -> None:
    """Each example of ``/pipeline help`` typed as it is shown: none answers with an error (``run leads-ods
    execution_date=…`` did: the demo's leads-ods took load_date). Typed in #data-ops, a quiet channel the bot is
    in: ``subscribe leads-ods`` subscribes the channel it is typed in, which the bot must be able to post to."""
    await open_page(page, demo_url, "C0OPS")
    examples = await help_examples(page)
    assert "/pipeline run leads-ods execution_date=2024-01-31" in examples
    assert len(examples) >= 25, examples
    messages = page.locator("#messages .msg")
    for example in examples:
        shown = await messages.count()
        await command(page, example)
        if example == "/pipeline run":  # the modal, not a message
            modal = page.get_by_role("dialog", name="Run a pipeline")
            await expect(modal).to_be_visible()
            await modal.get_by_role("button", name="Cancel").click()
            await expect(modal).to_be_hidden()
            continue
        await expect(messages).not_to_have_count(shown)  # its answer, or its card
        answered = await messages.nth(shown).inner_text()
        assert "⚠️" not in answered and "failed with the error" not in answered, (example, answered)
    await shots("every-example-answered")
    errors = page.locator("#messages .msg", has_text=re.compile("⚠️|failed with the error"))
    await expect(errors).to_have_count(0)  # nor later, from a command answered after the next was typed
    for name in ("leads-ods", "daily-sales"):  # the runs the examples started went well
        await expect(card(page, name).first.locator(".bk-header")).not_to_contain_text("failed", timeout=RUN_TIMEOUT)
