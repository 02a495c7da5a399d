from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.local_servers import refuse_showing_the_request, web_server


@pytest.fixture
async def proxy() -> AsyncIterator[str]:
    """``host:port`` of a proxy refusing every request with a page that shows the request's headers."""
    async with web_server(refuse_showing_the_request) as url:
        yield url.removeprefix("http://")


#: the proxy variables httpx and the Slack SDK read (each in upper and lower case)
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """None of the machine's proxy variables: each test sets its own."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch

