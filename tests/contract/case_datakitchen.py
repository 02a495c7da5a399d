"""DataKitchen in the shared contract suite: the client against the emulator, logging in with a password."""

from __future__ import annotations

from typing import Any

from bot.providers.base import ProviderClient
from tests.contract.cases import RETRY, ProviderCase, Sleep

USERNAME = "pipeline-bot@example.com"
PASSWORD = "s3cret-Kitchen-pass"
KITCHEN, RECIPE, VARIATION = "Production", "Daily_Sales", "daily_run"


def case() -> ProviderCase:
    from bot.emulators.datakitchen import DataKitchenEmulator
    from bot.providers import datakitchen

    def client(url: str, sleep: Sleep, timeout: float = 5.0) -> ProviderClient[Any, Any]:
        conn = datakitchen.Connection(base_url=url, username=USERNAME, password=PASSWORD, timeout_seconds=timeout)
        return datakitchen.Client("datakitchen-test", conn, retry=RETRY, sleep=sleep)

    def bad(url: str, sleep: Sleep) -> ProviderClient[Any, Any]:
        conn = datakitchen.Connection(base_url=url, username=USERNAME, password="wrong-password-123")
        return datakitchen.Client("datakitchen-test", conn, retry=RETRY, sleep=sleep)

    return ProviderCase(
        name="datakitchen",
        # strict: the emulator serves only what a DataKitchen source shows (docs/PROVIDERS.md)
        emulator=lambda state: DataKitchenEmulator(state, users={USERNAME: PASSWORD}, strict=True),
        client=client,
        bad_client=bad,
        job=datakitchen.Job(kitchen=KITCHEN, recipe=RECIPE, variation=VARIATION),
        job_key=f"{KITCHEN}/{RECIPE}/{VARIATION}",
        parameters={"DT": "20240501"},
    )
