"""Tailer's bearer tokens: a static one, one signed with a service-account key, or one renewed from Firebase."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from pathlib import Path

import httpx
from pydantic import SecretStr

from bot.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
)
from bot.providers._http import BearerToken, header_problem, loads, read_capped
from bot.providers.tailer.config import Connection, ServiceAccountKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without checking the signature; None when there is none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


def mint_jwt(key: ServiceAccountKey, audience: str, now: float, lifetime: int = 3600) -> str:
    """A self-signed RS256 JWT for a Google service account, as Tailer accepts it."""
    # imported with the key (``ServiceAccountKey.from_json``): a bot whose Tailer connections use tokens never loads it
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    header = {"alg": "RS256", "typ": "JWT", "kid": key.private_key_id}
    iat = int(now)
    claims = {
        "iss": key.client_email,
        "sub": key.client_email,
        "email": key.client_email,
        "aud": audience,
        "iat": iat,
        "exp": iat + lifetime,
    }
    signing_input = ".".join(_b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
    signature = key.private_key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


class _StaticToken(BearerToken):
    """A static token from ``tailer auth get-token`` (``Bearer`` before it or not); when it expires Tailer answers
    401."""

    def __init__(self, token: SecretStr) -> None:
        value = token.get_secret_value().strip()
        super().__init__(value[7:].strip() if value.lower().startswith("bearer ") else value)
        #: when the token stops working (its ``exp``), None when it does not say
        self.expires_at = jwt_expiry(self.token)


class ServiceAccountAuth(httpx.Auth):
    """Signs a JWT with the service-account key, caches it, and signs a new one 5 minutes before expiry.

    Signing needs no request, so the lock is a plain ``threading.Lock`` held for the few
    milliseconds of signing: it serializes renewals for concurrent requests on the event loop and
    in threads alike. ``clock`` is injectable so tests can move time.
    """

    LIFETIME = 3600
    RENEW_BEFORE = 300

    def __init__(self, key: ServiceAccountKey, audience: str, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.audience = audience
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.minted = 0  # how many tokens were signed, for tests and metrics

    def token(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or self._expires - now < self.RENEW_BEFORE:
                self._token = mint_jwt(self.key, self.audience, now, self.LIFETIME)
                self._expires = int(now) + self.LIFETIME
                self.minted += 1
            return self._token

    def secrets(self) -> list[str]:
        return [s for s in (self._token, self.key.private_key_pem) if s]

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        yield request


class FirebaseSession(httpx.Auth):
    """Renews the Firebase ID token the way tailer-sdk does.

    tailer-sdk keeps the Firebase user of ``tailer auth login`` (``refreshToken``) and the project's
    ``tailer_firebase_api_key`` in ``$TAILER_HOME/tailer-configuration.json``; before each command
    ``tailer_auth.get_refreshed_firebase_user`` calls the firebase library's ``Auth.refresh``, which posts
    ``{"grantType": "refresh_token", "refreshToken": …}`` to Google's token service with ``?key=<api key>``
    and reads ``id_token``, ``refresh_token`` and ``user_id``; the ID token is then the bearer.

    The bot renews when it has no token or the token's ``exp`` is under ``RENEW_BEFORE`` seconds away, and
    once more when Tailer answers 401 (then replays the request). The renewal is a request of its own, sent
    from inside the auth flow under an ``asyncio.Lock`` so that concurrent polls share one renewal.
    """

    RENEW_BEFORE = 300.0

    def __init__(
        self,
        token_url: str,
        api_key: SecretStr,
        refresh_token: SecretStr,
        *,
        clock: Callable[[], float],
        error: Callable[[type[ProviderError], str], ProviderError],
    ) -> None:
        self._url = token_url
        self._api_key = api_key
        self._refresh = refresh_token.get_secret_value().strip()
        self._clock = clock
        self._error = error
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires: float | None = None
        self._held: list[str] = []  # recent tokens, for redaction
        self.renewed = 0  # how many renewals were answered, for tests and metrics

    def secrets(self) -> list[str]:
        return [*self._held, self._refresh]

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("the Tailer session works with httpx.AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        async with self._lock:
            if self._token is None or (
                self._expires is not None and self._expires - self._clock() < self.RENEW_BEFORE
            ):
                answer = yield self._renewal(request)
                await read_capped(answer)  # within the size cap, inflated by the bot (aread() has no limit)
                self._take(answer)
            token = self._token
        response = yield _signed(request, token)
        if response.status_code != 401:
            return
        async with self._lock:  # expired or revoked early: renew once, unless another call just did
            if self._token == token:
                answer = yield self._renewal(request)
                await read_capped(answer)  # within the size cap, inflated by the bot (aread() has no limit)
                self._take(answer)
            token = self._token
        yield _signed(request, token)

    def _renewal(self, request: httpx.Request) -> httpx.Request:
        timeout = request.extensions.get("timeout")
        return httpx.Request(
            "POST",
            self._url,
            params={"key": self._api_key.get_secret_value()},
            json={"grantType": "refresh_token", "refreshToken": self._refresh},
            headers={"accept": "application/json", "user-agent": request.headers.get("user-agent", "pipeline-bot")},
            extensions={"timeout": timeout} if timeout is not None else {},
        )

    def _take(self, answer: httpx.Response) -> None:
        """Adopt the renewed token, or raise: nothing is sent to Tailer without one."""
        code = answer.status_code
        if code == 429 or code >= 500:
            raise self._error(
                ProviderUnavailable,
                f"Google's token service answered HTTP {code} when the bot renewed the Tailer token: nothing was "
                "sent to Tailer; the next call tries again.",
            )
        try:
            body = loads(answer.content)
        except ValueError:
            body = None
        if not answer.is_success:
            # Google's errors read {"error": {"message": "INVALID_REFRESH_TOKEN"}}, as tailer-sdk's login reads them
            said = body.get("error") if isinstance(body, dict) else None
            reason = said.get("message") if isinstance(said, dict) else None
            raise self._error(
                ProviderAuthError,
                f"Google's token service refused the connection's refresh token (HTTP {code}"
                f"{f', {reason}' if isinstance(reason, str) else ''}). Run `tailer auth login` again and copy "
                "firebase_user.refreshToken from $TAILER_HOME/tailer-configuration.json into the connection's "
                "environment variable.",
            )
        token = body.get("id_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise self._error(  # not a response error: on a launch that would read "it may have started"
                ProviderAuthError,
                "Google's token service answered a renewal of the Tailer token without id_token: nothing was sent "
                "to Tailer.",
            )
        if header_problem(token.strip()) is not None:
            raise self._error(  # adopted, it would fail every call to Tailer until the next renewal
                ProviderAuthError,
                "Google's token service answered a renewal of the Tailer token with an id_token that "
                f"{header_problem(token.strip())}, which no HTTP header can carry: nothing was sent to Tailer.",
            )
        self._token = token.strip()
        self._expires = jwt_expiry(self._token)
        self._held = [*self._held[-4:], self._token]
        rotated = body.get("refresh_token") if isinstance(body, dict) else None
        if isinstance(rotated, str) and rotated.strip():
            self._refresh = rotated.strip()
        self.renewed += 1


def _signed(request: httpx.Request, token: str | None) -> httpx.Request:
    request.headers["Authorization"] = f"Bearer {token}"
    return request



def _build_auth(
    name: str,
    connection: Connection,
    clock: Callable[[], float],
    error: Callable[[type[ProviderError], str], ProviderError],
) -> _StaticToken | ServiceAccountAuth | FirebaseSession:
    """The auth the connection asks for; an unreadable key file is a configuration error."""
    if connection.token is not None:
        return _StaticToken(connection.token)
    if connection.refresh_token is not None and connection.firebase_api_key is not None:
        return FirebaseSession(
            connection.token_url, connection.firebase_api_key, connection.refresh_token, clock=clock, error=error
        )
    if connection.service_account_json is not None:
        key = ServiceAccountKey.from_json(connection.service_account_json.get_secret_value())
        return ServiceAccountAuth(key, connection.effective_audience, clock)
    key = _key_file(connection.service_account_file or "", name)
    return ServiceAccountAuth(key, connection.effective_audience, clock)


def _key_file(written: str, name: str) -> ServiceAccountKey:
    """The service-account key in the file ``written``; ConfigError says why not (never quoting the key)."""
    path = Path(written).expanduser()
    try:
        return ServiceAccountKey.from_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            [f"service_account_file: cannot read {path}: {exc.strerror or exc}"], source=f"connection {name}"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError([f"service_account_file: {path}: {exc}"], source=f"connection {name}") from None
