from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.local_servers import refuse_showing_the_request, web_server


@pytest.fixture
async def proxy() -> AsyncIterator[str]:
    """``host:port`` of a proxy refusing every request with a page that shows the request's headers."""
    async with web_server(refuse_showing_the_request) as url:
        yield url.removeprefix("http://")
