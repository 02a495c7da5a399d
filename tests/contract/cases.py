"""One entry per provider: how to pair its client with its emulator for the shared contract suite.

Every provider must pass ``test_common.py`` (lifecycle and the failure table). A provider module adds
its own ``test_<provider>.py`` for its extra operations and the seed documents' samples.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.emulators._core import EmulatorState
from bot.emulators._server import EmulatorServer
from bot.providers._http import RetryPolicy
from bot.providers.base import JobConfig, ProviderClient

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class ProviderCase:
    name: str
    #: builds the emulator around a state (credentials set so that ``client`` is accepted)
    emulator: Callable[[EmulatorState], EmulatorServer]
    #: builds a client for the emulator at ``url``; ``timeout`` in seconds
    client: Callable[[str, Sleep, float], ProviderClient[Any, Any]]
    #: a client whose credentials the emulator refuses
    bad_client: Callable[[str, Sleep], ProviderClient[Any, Any]]
    job: JobConfig
    #: the emulator's key for ``job`` (what ``EmulatorState.script`` takes)
    job_key: str
    trigger_route: str = "trigger"
    status_route: str = "status"
    parameters: dict[str, str] = field(default_factory=dict)
    #: shared tests that depend on an assumption of this provider's emulator: test name → the assumption; they run
    #: against ``lenient_emulator`` (the emulator without strict mode), the others against ``emulator``
    lenient_for: dict[str, str] = field(default_factory=dict)
    lenient_emulator: Callable[[EmulatorState], EmulatorServer] | None = None


RETRY = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05, max_retry_after=120.0)


def _invision() -> ProviderCase:
    from bot.emulators.invision import InVisionEmulator
    from bot.providers import invision

    def client(url: str, sleep: Sleep, timeout: float = 5.0) -> ProviderClient[Any, Any]:
        conn = invision.Connection(base_url=f"{url}/invision/", api_key="key-1234", timeout_seconds=timeout)
        return invision.Client("invision-test", conn, retry=RETRY, sleep=sleep)

    def bad(url: str, sleep: Sleep) -> ProviderClient[Any, Any]:
        conn = invision.Connection(base_url=f"{url}/invision/", api_key="wrong-key")
        return invision.Client("invision-test", conn, retry=RETRY, sleep=sleep)

    flow = "2b081248-4963-43b3-ba06-5b7403d58b4d"
    return ProviderCase(
        name="invision",
        emulator=lambda state: InVisionEmulator(state, api_keys={"key-1234"}, strict=True),
        client=client,
        bad_client=bad,
        job=invision.Job(dataflow_id=flow),
        job_key=flow,
        lenient_for={
            "test_refused_credentials_are_an_auth_error_without_the_secret":
                "InVision's document gives no answer for a refused key (only a bare 500); the 401 is assumed",
        },
        lenient_emulator=lambda state: InVisionEmulator(state, api_keys={"key-1234"}),
    )


def all_cases() -> list[ProviderCase]:
    cases = [_invision()]
    for extra in ("rivery", "tailer", "datakitchen"):
        try:
            module = __import__(f"tests.contract.case_{extra}", fromlist=["case"])
        except ModuleNotFoundError:
            continue
        cases.append(module.case())
    return cases
