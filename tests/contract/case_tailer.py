"""Tailer in the shared contract suite: a static token and a table-to-table job in DEV, against the
emulator in strict mode (it serves only what docs/PROVIDERS.md "Tailer: provenance" gives a source for)."""

from __future__ import annotations

from typing import Any

from bot.providers.base import ProviderClient
from tests.contract.cases import RETRY, ProviderCase, Sleep

#: looks like what `tailer auth get-token` prints (three base64url parts)
TOKEN = "eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QtMSJ9.eyJ1c2VyX2lkIjoiYm90QGV4YW1wbGUuY29tIn0.c2lnbmF0dXJlLW9mLXRlc3Q"
WRONG_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJ1c2VyX2lkIjoic29tZW9uZS1lbHNlIn0.d3Jvbmctc2lnbmF0dXJl"
CONFIGURATION_ID = "000099_iowa_liquor_prepare_pda"
#: what the emulator keys the job by: table-to-table ids reach Tailer with their environment
SENT_CONFIGURATION_ID = f"{CONFIGURATION_ID}_DEV"


def case() -> ProviderCase:
    from bot.emulators.tailer import TailerEmulator
    from bot.providers import tailer

    def client(url: str, sleep: Sleep, timeout: float = 5.0) -> ProviderClient[Any, Any]:
        conn = tailer.Connection(base_url=url, token=TOKEN, timeout_seconds=timeout)
        return tailer.Client("tailer-test", conn, retry=RETRY, sleep=sleep)

    def bad(url: str, sleep: Sleep) -> ProviderClient[Any, Any]:
        conn = tailer.Connection(base_url=url, token=WRONG_TOKEN)
        return tailer.Client("tailer-test", conn, retry=RETRY, sleep=sleep)

    return ProviderCase(
        name="tailer",
        emulator=lambda state: TailerEmulator(state, tokens={TOKEN}, strict=True),  # only what has a source
        client=client,
        bad_client=bad,
        job=tailer.Job(
            account="000099", environment="DEV", configuration_type="table-to-table", configuration_id=CONFIGURATION_ID
        ),
        job_key=SENT_CONFIGURATION_ID,
    )
