"""The DataKitchen session: the login JWT, renewed before it expires and again on a 401."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncGenerator, Callable, Generator

import httpx
from pydantic import SecretStr

from bot.errors import (
    ProviderError,
)
from bot.providers._http import MAX_BODY_BYTES, CredentialUnsendable, header_problem, loads, read_capped, sendable
from bot.providers.datakitchen.answers import _has_error, _words

Clock = Callable[[], float]

#: renew the session token when fewer seconds than this remain (what DataKitchen's own clients do)
RENEW_BEFORE_S = 180.0
#: after a renewal that failed for a passing reason, wait this long before trying again
_RENEW_PAUSE_S = 30.0


class _Session(httpx.Auth):
    """The DataKitchen session: logs in, renews and re-logs in around every request.

    Renewing needs requests of its own (login, validatetoken), sent from inside the auth flow under
    a lock, so that many concurrent status polls share one login. The token is a JWT whose ``exp``
    is read without checking the signature, as DataKitchen's own clients do.
    """

    requires_response_body = True  # documents the need; this async flow reads the bodies itself

    def __init__(
        self,
        base_url: str,
        username: str,
        password: SecretStr,
        *,
        clock: Clock,
        refuse: Callable[[httpx.Response], ProviderError],
        malformed: Callable[[str], ProviderError],
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        base = httpx.URL(base_url if base_url.endswith("/") else base_url + "/")
        self._login_url = base.join("v2/login")
        self._validate_url = base.join("v2/validatetoken")
        self._username = username
        self._password = password
        self._clock = clock
        self._refuse = refuse
        self._malformed = malformed
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at: float | None = None
        self._quiet_until = 0.0
        self._held: list[str] = []  # recent tokens, for redaction
        self._max_body = max_body

    # -- state -----------------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        return self._token

    def tokens(self) -> list[str]:
        """Tokens this session has held lately: they are secrets too and must never be shown."""
        return list(self._held)

    def needs_renewal(self) -> bool:
        """No token yet, or one that expires within ``RENEW_BEFORE_S``."""
        return self._token is None or self._expiring()

    def _expiring(self) -> bool:
        now = self._clock()
        return (
            self._expires_at is not None
            and self._expires_at - now < RENEW_BEFORE_S
            and now >= self._quiet_until
        )

    def _adopt(self, token: str) -> None:
        if header_problem(token) is not None:  # a renewal no header can carry: the current token still holds
            return
        self._token = token
        self._expires_at = jwt_expiry(token)
        self._quiet_until = 0.0
        if token not in self._held:
            self._held = [*self._held[-4:], token]

    # -- flow ------------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("the DataKitchen session works with httpx.AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # every answer is read here within the size limit (a plain aread() has none); HttpCaller maps BodyTooLarge
        validating = request.url == self._validate_url
        async with self._lock:
            if self._token is not None and not validating and self._expiring():
                answer = yield self._validate_request(request, self._token)
                await read_capped(answer, self._max_body)
                self._take_validation(answer)
            if self._token is None:
                answer = yield self._login_request(request)
                await read_capped(answer, self._max_body)
                if not self._take_login(answer):
                    return  # 429/5xx (retried like any other answer) or a redirect: the caller sees it
            token = self._token
        response = yield self._signed(request, token)
        await read_capped(response, self._max_body)
        self._take_answer(response, validating)
        if response.status_code != 401:
            return
        async with self._lock:  # expired or revoked: log in again, once, then replay the request
            if self._token is None or self._token == token:
                answer = yield self._login_request(request)
                await read_capped(answer, self._max_body)
                if not self._take_login(answer):
                    return
            token = self._token
        response = yield self._signed(request, token)
        await read_capped(response, self._max_body)
        self._take_answer(response, validating)

    # -- requests --------------------------------------------------------------------------

    @staticmethod
    def _signed(request: httpx.Request, token: str | None) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {sendable(token or '', 'the token DataKitchen logged in with')}"
        return request

    @staticmethod
    def _extensions(request: httpx.Request) -> dict[str, object]:
        """Requests built here keep the caller's timeouts (without them httpx would wait for ever)."""
        timeout = request.extensions.get("timeout")
        return {"timeout": timeout} if timeout is not None else {}

    def _login_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            "POST",
            self._login_url,
            data={"username": self._username, "password": self._password.get_secret_value()},
            headers={"accept": "*/*", "user-agent": request.headers.get("user-agent", "pipeline-bot")},
            extensions=self._extensions(request),
        )

    def _validate_request(self, request: httpx.Request, token: str) -> httpx.Request:
        return httpx.Request(
            "GET",
            self._validate_url,
            headers={
                "accept": "application/json",
                "authorization": f"Bearer {token}",
                "user-agent": request.headers.get("user-agent", "pipeline-bot"),
            },
            extensions=self._extensions(request),
        )

    # -- answers ---------------------------------------------------------------------------

    def _take_login(self, response: httpx.Response) -> bool:
        """Adopt the token of a login answer. False when the platform is busy or failing, or redirects (the
        caller reports that answer: a redirect is not a wrong password)."""
        code = response.status_code
        if code == 429 or code >= 500 or response.is_redirect:
            return False
        if not response.is_success:
            raise self._refuse(response)
        token, error = _token_of(response.text)
        if error:
            raise self._refuse(response)
        if not token:
            raise self._malformed(f"DataKitchen answered the login of user {self._username!r} without a token.")
        problem = header_problem(token)
        if problem is not None:  # nothing sent with it; the next call logs in again
            raise CredentialUnsendable("the token DataKitchen's login answered with", problem)
        self._adopt(token)
        return True

    def _take_validation(self, response: httpx.Response) -> None:
        """Adopt a fresh token from ``validatetoken``; drop a refused one so that a login follows."""
        self._take_refreshed(response)
        if response.is_success:
            token, _ = _token_of(response.text, key="token")
            if token and token.count(".") == 2:
                self._adopt(token)
            elif self._expiring():  # "true" without a new token: log in for a fresh one
                self._token = None
        elif response.status_code == 401:
            self._token = None
        else:  # busy or failing: the current token still holds for a while
            self._quiet_until = self._clock() + _RENEW_PAUSE_S

    def _take_answer(self, response: httpx.Response, validating: bool) -> None:
        if validating and response.is_success:
            self._take_validation(response)
        else:
            self._take_refreshed(response)

    def _take_refreshed(self, response: httpx.Response) -> None:
        fresh = response.headers.get("refreshed_token", "").strip().strip('"')
        if fresh and response.status_code != 401:
            self._adopt(fresh)


def _token_of(text: str, key: str = "token") -> tuple[str, str]:
    """(token, error) from a login or validatetoken body: raw JWT, quoted JWT, or JSON with ``token``."""
    text = text.strip()
    if text.startswith(("{", '"')):
        try:
            body = loads(text)
        except ValueError:
            return text.strip('"'), ""
        if isinstance(body, str):
            return body.strip(), ""
        if isinstance(body, dict):
            if _has_error(body):
                return "", _words(body["error"]) or "error"
            value = body.get(key)
            return (value.strip(), "") if isinstance(value, str) else ("", "")
        return "", ""
    return text, ""


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without checking the signature; None when there is none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)

