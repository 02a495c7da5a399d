"""A trigger whose deadline passes before it was sent (found by the third independent pass): with a connection's
``timeout_seconds`` of 10 or less, its connect timeout equals the call's deadline, and the deadline fired first, so
a provider that never accepted the connection was reported "unknown whether it started" (no automatic retry, the
person sent to the console) instead of "did not start"."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from bot.catalog.load import parse_catalog
from bot.errors import ProviderUnavailable, TriggerOutcomeUnknown
from bot.service.clients import ClientPool


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port whose listen queue is full: a new connection is never accepted (its SYN is dropped)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


async def test_a_trigger_never_connected_by_its_deadline_did_not_start(unaccepting_port: int) -> None:
    catalog = parse_catalog(
        {
            "version": 1,
            "defaults": {"channel": "C0ALERTS"},
            "connections": {
                "inv": {
                    "provider": "invision",
                    "base_url": f"http://127.0.0.1:{unaccepting_port}/invision/",
                    "api_key": "${K}",
                    "timeout_seconds": 1.5,
                }
            },
            "pipelines": {"p": {"connection": "inv", "dataflow_id": "f"}},
        },
        env={"K": "k" * 12},
    )
    pool = ClientPool.for_catalog(catalog)
    try:
        with pytest.raises(ProviderUnavailable) as raised:
            await pool.client("inv").trigger(pool.job("invision", catalog.pipelines["p"].job.model_dump()), {})
        assert not isinstance(raised.value, TriggerOutcomeUnknown)
    finally:
        await pool.aclose()
