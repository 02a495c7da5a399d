"""A connection's HTTP pool split into small pools, each request sent through the least busy one.

httpcore 1.0's pool scans all its connections, and for each idle one all of them again, every time a request
starts or ends; it also closes idle connections whenever it holds more connections than its keep-alive limit.
With 64 status calls in flight per connection (the benchmark's ``max_concurrency``) that scanning was a quarter of
the bot's CPU at 5,000 runs (``bench/tracking_scale --profile``, docs/PERFORMANCE.md), and a larger keep-alive
limit made it worse. Pools of ``SHARD`` connections, each keeping alive all it opens, scan a few connections each.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator

import httpx

__all__ = ["SHARD", "ShardedTransport", "tls_context"]

#: connections per small pool: what one scan of httpcore's pool walks
SHARD = 8


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every pool: each loads the CA bundle (certifi's, or ``SSL_CERT_FILE``), about 0.3 s of CPU
    on the benchmark's machine; one per small pool was 9 % of the profile at 5,000 runs."""
    return httpx.create_ssl_context()


class _Counted(httpx.AsyncByteStream):
    """A response's body that tells its pool when it is done with: the connection is busy until then."""

    def __init__(self, stream: httpx.AsyncByteStream, done: ShardedTransport, shard: int) -> None:
        self._stream = stream
        self._done = done
        self._shard: int | None = shard

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._shard is not None:
                self._done.busy[self._shard] -= 1
                self._shard = None


class ShardedTransport(httpx.AsyncBaseTransport):
    def __init__(self, connections: int, *, http2: bool = False, keepalive_expiry: float = 5.0) -> None:
        count = max(1, -(-connections // SHARD))
        size = -(-connections // count)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size, keepalive_expiry=keepalive_expiry)
        self.shards = [httpx.AsyncHTTPTransport(verify=tls_context(), http2=http2, limits=limits) for _ in range(count)]
        self.busy = [0] * count  # requests whose answer is not read to its end yet, per shard

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        shard = min(range(len(self.shards)), key=self.busy.__getitem__)
        self.busy[shard] += 1
        try:
            response = await self.shards[shard].handle_async_request(request)
        except BaseException:
            self.busy[shard] -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Counted(response.stream, self, shard),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        for shard in self.shards:
            await shard.aclose()
