"""Request signing exactly as Slack does it, so the fake's requests pass (or fail) Bolt's verification.

Slack signs ``v0:{timestamp}:{raw body}`` with HMAC-SHA256 keyed by the app's signing secret and sends
``X-Slack-Signature: v0=<hex>`` with ``X-Slack-Request-Timestamp``. Apps reject a bad signature and a
timestamp more than five minutes away from their clock (replay protection). Pure functions: no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["MAX_AGE_SECONDS", "signature", "signed_headers", "verify"]

MAX_AGE_SECONDS = 300


def _as_bytes(body: bytes | str) -> bytes:
    return body if isinstance(body, bytes) else body.encode("utf-8")


def signature(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """``v0=`` + hex HMAC-SHA256 of ``v0:{timestamp}:{body}``: the value of ``X-Slack-Signature``."""
    base = b"v0:" + str(timestamp).encode("ascii") + b":" + _as_bytes(body)
    return "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes | str, *, timestamp: int | str | None = None) -> dict[str, str]:
    """The two headers Slack adds to every request; ``timestamp`` defaults to now (seconds)."""
    ts = str(int(time.time())) if timestamp is None else str(timestamp)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature(secret, ts, body)}


def verify(
    secret: str,
    timestamp: str | None,
    body: bytes | str,
    given: str | None,
    *,
    now: float | None = None,
    max_age: int = MAX_AGE_SECONDS,
) -> bool:
    """What an app checks: a fresh timestamp and a matching signature (constant-time comparison)."""
    if not timestamp or not given:
        return False
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except ValueError:
        return False
    if age > max_age:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), given)
