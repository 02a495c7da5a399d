"""Drive DataKitchen's own client, DKCloudCommand (unmodified, from PyPI), against a DataKitchen API.

Run it with the Python of the venv ``scripts/dkcloudcommand-venv`` makes (DKCloudCommand pins versions
of requests, cryptography and typing-extensions that clash with the bot's, so it cannot share the
bot's venv), against ``pipeline-bot emulate datakitchen --strict`` started with the scenario that
``tests/contract/test_vendor_clients.py`` writes (or ``SCENARIO`` below)::

    pipeline-bot emulate datakitchen --strict --port 8765 --scenario dk.yml &
    "$(scripts/dkcloudcommand-venv)" scripts/dkcloudcommand_drive.py http://127.0.0.1:8765

It logs in, creates orders with overrides, lists the recipe's orders, reads order-run details with the node
summary and the log (and the whole log, exported, as ``dk orderrun-info --full_log`` does), pauses and
unpauses an order, stops an order run and resumes a failed one, through DKCloudCommand's DKCloudAPI and
DKCloudCommandRunner, as its ``dk`` commands do. It prints one JSON object per step and exits 1 at the first
step DKCloudCommand reports as failed.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

from DKCloudCommand.modules.DKCloudAPI import DKCloudAPI
from DKCloudCommand.modules.DKCloudCommandConfig import DKCloudCommandConfig
from DKCloudCommand.modules.DKCloudCommandRunner import DKCloudCommandRunner

USERNAME, PASSWORD = "dk-user@example.com", "dk-password-123"
KITCHEN, RECIPE = "Production", "Daily_Sales"
HANGS, FAILS = "daily_run", "failing_run"  # variations: one that runs until stopped, one that fails
SCENARIO = f"""\
users: {{"{USERNAME}": "{PASSWORD}"}}
default: null
jobs:
  {KITCHEN}/{RECIPE}/{HANGS}: {{result: hang, queued_s: 0.2}}
  {KITCHEN}/{RECIPE}/{FAILS}:
    - {{result: fail, queued_s: 0.1, running_s: 0.2, message: "disk full", failed_tasks: [load]}}
    - {{result: hang, queued_s: 0.2}}
"""


def step(name: str, rc: Any, **shown: Any) -> Any:
    """Report one step; stop at the first one DKCloudCommand says failed."""
    ok = bool(rc.ok()) if hasattr(rc, "ok") else bool(rc)
    print(json.dumps({"step": name, "ok": ok, **shown}), flush=True)
    if not ok:
        print(f"{name} failed: {getattr(rc, 'get_message', lambda: rc)()}", file=sys.stderr)
        sys.exit(1)
    return rc


def check(holds: bool, what: str) -> None:
    if not holds:
        print(f"unexpected: {what}", file=sys.stderr)
        sys.exit(1)


def runs_of(api: DKCloudAPI, variation: str) -> list[dict[str, Any]]:
    """The order runs of the recipe's newest order of ``variation`` (DKCloudCommand's list_order payload)."""
    rc = DKCloudCommandRunner.list_order(api, KITCHEN, order_count=10, order_run_count=5, recipe=RECIPE)
    step("list_order", rc)
    payload = rc.get_payload()
    for order in payload["orders"]:
        if order["variation"] == variation:
            return list(payload["servings"].get(order["hid"], {}).get("servings", []))
    return []


def wait_for(api: DKCloudAPI, variation: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        runs = runs_of(api, variation)
        if runs and runs[0]["status"] == status:
            return runs[0]
        time.sleep(0.2)
    print(f"no order run of {variation} reached {status}", file=sys.stderr)
    sys.exit(1)


def main(url: str) -> None:
    parts = urlsplit(url)
    folder = tempfile.mkdtemp(prefix="dkcloudcommand-")
    cfg = DKCloudCommandConfig()
    cfg.set_dk_temp_folder(folder)
    cfg.set_dk_customer_temp_folder(folder)
    configured = cfg.init_from_dict({
        "dk-cloud-ip": f"{parts.scheme}://{parts.hostname}",
        "dk-cloud-port": str(parts.port),
        "dk-cloud-username": USERNAME,
        "dk-cloud-password": PASSWORD,
    })
    step("config", configured)
    api = DKCloudAPI(cfg)
    step("login", api.login() is not None)

    created = step("create_order", DKCloudCommandRunner.create_order(
        api, KITCHEN, RECIPE, HANGS, parameters={"DT": "20240501", "BATCH": 500}, now=True))
    order_id = created.get_payload()["order_id"]
    listing = step("list_order", DKCloudCommandRunner.list_order(api, KITCHEN, recipe=RECIPE))
    check("Status:\t\tACTIVE_ORDER" in listing.get_message(), listing.get_message())
    running = wait_for(api, HANGS, "ACTIVE_SERVING")

    detail = step("orderrun_detail", DKCloudCommandRunner.orderrun_detail(
        api, KITCHEN, {"serving_hid": running["hid"], "summary": True, "logs": True, "status": True}))
    message = detail.get_message()
    check(f"Order ID:\t{order_id}" in message, message)
    check("STEP STATUS" in message, message)

    step("pause_order", DKCloudCommandRunner.pause_order(api, KITCHEN, order_id))
    paused = step("list_order", DKCloudCommandRunner.list_order(api, KITCHEN, recipe=RECIPE))
    check("Status:\t\tPAUSED_ORDER" in paused.get_message(), paused.get_message())
    step("unpause_order", DKCloudCommandRunner.unpause_order(api, KITCHEN, order_id))
    step("stop_orderrun", DKCloudCommandRunner.stop_orderrun(api, KITCHEN, running["hid"]))
    wait_for(api, HANGS, "STOPPED_SERVING")

    step("create_order", DKCloudCommandRunner.create_order(api, KITCHEN, RECIPE, FAILS, now=True))
    failed = wait_for(api, FAILS, "SERVING_ERROR")
    # what the failure's thread reads: the log and the test results of the failed order run, as the vendor prints them
    failure = step("orderrun_detail", DKCloudCommandRunner.orderrun_detail(
        api, KITCHEN, {"serving_hid": failed["hid"], "summary": True, "logs": True, "testresults": True}))
    check("TEST RESULTS" in failure.get_message() and "LOG" in failure.get_message(), failure.get_message())
    # what the Full log pages when the details' log is cut: the whole log, exported (base64 of a zip of its text)
    whole = step("orderrun_detail --full_log", DKCloudCommandRunner.orderrun_detail(
        api, KITCHEN, {"serving_hid": failed["hid"]}, full_log=True))
    full = whole.get_message().partition("FULL LOG")[2]
    check("disk full" in full, whole.get_message())
    resumed = step("order_resume", DKCloudCommandRunner.order_resume(api, KITCHEN, failed["hid"]))
    check(bool(resumed.get_payload()), "order_resume answered no order id")
    wait_for(api, FAILS, "ACTIVE_SERVING")  # the resumed run, newest first
    print(json.dumps({"step": "done", "ok": True}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} <base URL of a DataKitchen API, e.g. http://127.0.0.1:8765>")
    main(sys.argv[1])
