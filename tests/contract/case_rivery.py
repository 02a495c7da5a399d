"""Rivery's legacy API in the shared contract suite (``test_common.py``); the v1 API is in ``test_rivery.py``."""

from __future__ import annotations

from typing import Any

from bot.providers.base import ProviderClient
from tests.contract.cases import RETRY, ProviderCase, Sleep

TOKEN = "rivery-token-5f2c9a"
RIVER = "5e8e1eb46b028e37b73f44f0"  # the river of the vendor's own example


def case() -> ProviderCase:
    from bot.emulators.rivery import RiveryEmulator
    from bot.providers import rivery

    def client(url: str, sleep: Sleep, timeout: float = 5.0) -> ProviderClient[Any, Any]:
        conn = rivery.Connection(base_url=f"{url}/api", api_token=TOKEN, timeout_seconds=timeout)
        return rivery.Client("rivery-test", conn, retry=RETRY, sleep=sleep)

    def bad(url: str, sleep: Sleep) -> ProviderClient[Any, Any]:
        conn = rivery.Connection(base_url=f"{url}/api", api_token="wrong-token-1234")
        return rivery.Client("rivery-test", conn, retry=RETRY, sleep=sleep)

    return ProviderCase(
        name="rivery",
        emulator=lambda state: RiveryEmulator(state, tokens={TOKEN}, strict=True),
        client=client,
        bad_client=bad,
        job=rivery.Job(river_id=RIVER),
        job_key=RIVER,
        trigger_route="trigger",
        status_route="status",
        # no parameters: sending them as "variables" is an assumption, tested apart (test_rivery.py, lenient)
        parameters={},
    )
