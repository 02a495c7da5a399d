"""Tailer: launch table-to-table jobs, read runs, enable/disable/archive configurations, reset workflows.

Every Tailer call is a POST with a JSON body naming the job (``account``, ``environment``,
``configuration_type``, ``configuration_id``) and an ``action``. Status and list calls only read, so
they are sent as idempotent (retried); a launch is sent once, and so is a configuration or workflow
change (a person clicked: a failure is reported rather than repeated).

Authentication is a bearer JWT, one of:
- a static one from ``tailer auth get-token`` (a Firebase ID token: about an hour of life). Its ``exp`` is
  read without checking the signature: the bot says when it is about to expire and, once it has, sends
  nothing with it (Tailer would answer 401) until a person gives a new one;
- a Firebase refresh token and API key, as tailer-sdk keeps them after ``tailer auth login``: the bot
  renews the ID token itself the way tailer-sdk does (``FirebaseSession``);
- a Google service-account key from which the bot signs its own RS256 JWTs (an assumption: no vendor
  source documents it, see docs/PROVIDERS.md "Tailer: provenance").

Tailer has no cancel, and launches only table-to-table and table-to-storage configurations. For
table-to-table configurations the ``configuration_id`` Tailer knows ends with ``_<ENVIRONMENT>``; the
bot adds it, so pipelines.yml may hold the id as written in the job's JSON file. A run-status call
carries the job's full identity, ``job_id`` included: derived for table-to-table, required in the
catalog for every other type.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pydantic import Field, SecretStr, field_validator, model_validator

from bot.errors import (
    ConfigError,
    OperationNotSupported,
    ProviderAuthError,
    ProviderError,
    ProviderNoNews,
    ProviderNotFound,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
    TriggerOutcomeUnknown,
)
from bot.models import RunState, RunStatus, Triggered
from bot.providers._http import BearerToken, Call, RetryPolicy, Sleep, loads, read_capped
from bot.providers.base import Capability, ConnectionConfig, JobConfig, ProviderClient

__all__ = [
    "LAUNCHABLE",
    "Client",
    "Connection",
    "FirebaseSession",
    "Job",
    "ServiceAccountAuth",
    "ServiceAccountKey",
    "answer_error",
    "jwt_expiry",
    "map_status",
    "mint_jwt",
    "parse_duration",
    "parse_launch",
    "parse_results",
    "parse_run",
]

DEFAULT_BASE_URL = "https://tailer-api-nqonovswsq-ew.a.run.app"
#: Google's token service, where tailer-sdk's firebase library renews ID tokens (``Auth.refresh``)
FIREBASE_TOKEN_URL = "https://securetoken.googleapis.com/v1/token"
#: "Tables to Tables or Tables to Storage data operations can be launched through the Tailer API" (seed line
#: 15); the values as the seed (line 27) and tailer-sdk (``tailer_configuration_manager``) spell them
LAUNCHABLE = ("table-to-table", "table-to-storage")

_STATES = {
    "WAITING": RunState.QUEUED,
    "RUNNING": RunState.RUNNING,
    "SUCCESS": RunState.SUCCEEDED,
    "FAILED": RunState.FAILED,
    "NO_MATCH": RunState.FAILED,
    "DEACTIVATED": RunState.CANCELED,
}
#: raw statuses outside the model that Tailer will not change any more
_FINAL_OUTSIDE = frozenset({"CHECKED"})

_MESSAGES = {
    "FAILED": "Tailer gives no failure details through its API: open the run in Tailer Studio to see the error.",
    "NO_MATCH": "No file template matched (NO_MATCH): the file that arrived matches none of the configuration's "
    "templates.",
    "CHECKED": "A failed run that someone marked as handled (CHECKED) in Tailer Studio.",
    "DEACTIVATED": "The configuration is deactivated (DEACTIVATED): enable it to run jobs again.",
}


def map_status(raw: str | None) -> RunState:
    """Tailer status → normalized state; case-insensitive, unknown values (and CHECKED) → UNKNOWN."""
    return _STATES.get((raw or "").strip().upper(), RunState.UNKNOWN)


def is_final_status(raw: str | None) -> bool:
    """Whether Tailer will not change a run with this raw status any more (terminal, or CHECKED)."""
    return map_status(raw).is_terminal or (raw or "").strip().upper() in _FINAL_OUTSIDE


# -- answers --------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(?:(-?\d+) days?, )?(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?\s*$")


def parse_duration(text: object) -> timedelta | None:
    """Tailer's ``duration`` is Python's ``str(timedelta)``: ``0:01:24.002519``, ``1 day, 2:03:04``."""
    if not isinstance(text, str):
        return None
    found = _DURATION.match(text)
    if found is None:
        return None
    days, hours, minutes, seconds, fraction = found.groups()
    return timedelta(
        days=int(days or 0),
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds),
        microseconds=int((fraction or "0").ljust(6, "0")),
    )


def _parse_time(text: object) -> datetime | None:
    """ISO dates as Tailer writes them (``2020-12-30T11:28:43.861340+00:00``); naive ones are UTC."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


Shown = Callable[[Any], str]


def _shown(value: Any) -> str:
    """A piece of an answer quoted in a message. The client passes one that redacts before it cuts."""
    return repr(str(value)[:200])


def answer_error(body: Any, shown: Shown = _shown) -> str | None:
    """What is wrong with an answer, or None when it is fine.

    Tailer answers changes with ``{"message": "ok"}`` or ``{"code": 200, "data": {}, "message": "ok"}``
    and reads with ``{"results": [...]}`` or ``{"run_id": ...}``. A ``message`` other than ``ok`` (such as
    ``KO``) or a ``code`` other than 2xx means the request failed even when the HTTP status says 200.
    """
    if isinstance(body, str):
        return None if body.strip().lower() == "ok" else shown(body)
    if not isinstance(body, dict):
        return f"an unexpected answer {shown(body)}"
    code = body.get("code")
    if isinstance(code, int) and not 200 <= code < 300:
        return f"code {code}: {shown(body.get('message') or '')}"
    if "message" in body:
        message = body["message"]
        if not (isinstance(message, str) and message.strip().lower() == "ok"):
            return shown(message)
    return None


def parse_launch(body: Any, shown: Shown = _shown) -> str:
    """The run id of a ``launch_job`` answer (``{"run_id": "20201230-113940-<uuid>"}``)."""
    if not isinstance(body, dict) or not isinstance(body.get("run_id"), str) or not body["run_id"].strip():
        raise ValueError(f"no run_id in {shown(body)}")
    return str(body["run_id"]).strip()


def parse_run(entry: Mapping[str, Any], run_id: str = "") -> RunStatus:
    """One entry of ``results`` as a RunStatus; the raw status and Tailer's own fields are kept."""
    raw = str(entry.get("status") or "").strip()
    state = map_status(raw)
    final = is_final_status(raw)
    started = _parse_time(entry.get("start_execution_date"))
    updated = _parse_time(entry.get("last_update_date"))
    duration = parse_duration(entry.get("duration"))
    ended: datetime | None = None
    if final:
        ended = started + duration if started is not None and duration is not None else updated
    message = str(entry.get("message") or entry.get("error") or "").strip() or _MESSAGES.get(raw.upper(), "")
    if not message and state is RunState.UNKNOWN:
        message = f"Tailer reports status {raw!r}, which the bot does not know."
    extra = {
        key: str(entry[key])
        for key in ("account", "environment", "configuration_type", "configuration_id", "job_id", "last_update_date")
        if entry.get(key) not in (None, "")
    }
    return RunStatus(
        run_id=str(entry.get("run_id") or run_id),
        state=state,
        raw_status=raw,
        message=message,
        started_at=started,
        ended_at=ended,
        duration=duration,
        final=final,
        extra=extra,
    )


def parse_results(body: Any, shown: Shown = _shown) -> list[RunStatus]:
    """The runs of a ``/v1/dag/status`` answer, in Tailer's order (newest first)."""
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise ValueError(f"no results list in {shown(body)}")
    runs = []
    for entry in body["results"]:
        if not isinstance(entry, dict):
            raise ValueError(f"a result is not an object: {shown(entry)}")
        runs.append(parse_run(entry))
    return runs


# -- configuration --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """The parts of a Google service-account key file that signing a JWT needs."""

    client_email: str
    private_key_id: str
    private_key: rsa.RSAPrivateKey
    private_key_pem: str  # kept only to redact it should it ever appear in a message

    @classmethod
    def from_json(cls, text: str) -> ServiceAccountKey:
        """Parse the key file's JSON. Error messages name the problem, never the key."""
        try:
            data = json.loads(text)
        except ValueError:
            raise ValueError("the service account key is not valid JSON") from None
        if not isinstance(data, dict):
            raise ValueError("the service account key must be a JSON object")
        missing = [k for k in ("client_email", "private_key", "private_key_id") if not data.get(k)]
        if missing:
            raise ValueError(f"the service account key lacks {', '.join(missing)}")
        pem = str(data["private_key"])
        try:
            key = serialization.load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError):
            raise ValueError("the service account key's private_key is not a readable PEM private key") from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the service account key's private_key is not an RSA key")
        return cls(str(data["client_email"]), str(data["private_key_id"]), key, pem)


class Connection(ConnectionConfig):
    """One Tailer account. Exactly one of ``token``, ``refresh_token`` (with ``firebase_api_key``),
    ``service_account_json``, ``service_account_file``."""

    provider: Literal["tailer"] = "tailer"
    base_url: str = DEFAULT_BASE_URL
    console_url: str | None = "https://studio.tailer.ai"
    token: SecretStr | None = Field(
        default=None, description="a JWT from `tailer auth get-token` (lasts about an hour)"
    )
    refresh_token: SecretStr | None = Field(
        default=None,
        description="firebase_user.refreshToken in $TAILER_HOME/tailer-configuration.json (after `tailer auth "
        "login`): the bot renews its tokens as tailer-sdk does",
    )
    firebase_api_key: SecretStr | None = Field(
        default=None, description="tailer_firebase_api_key in the same file; needed with refresh_token"
    )
    token_url: str = Field(default=FIREBASE_TOKEN_URL, description="where refresh tokens are exchanged")
    service_account_json: SecretStr | None = Field(
        default=None, description="the JSON text of a Google service-account key: the bot signs its own tokens"
    )
    service_account_file: str | None = Field(default=None, description="path of a service-account key file")
    audience: str | None = Field(default=None, description="JWT audience; default: the base URL's scheme and host")

    @field_validator("service_account_json")
    @classmethod
    def _readable_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            ServiceAccountKey.from_json(value.get_secret_value())  # a ValueError names the problem only
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> Connection:
        given = [
            name
            for name in ("token", "refresh_token", "service_account_json", "service_account_file")
            if getattr(self, name) not in (None, "")
        ]
        if len(given) != 1:
            found = f"got {', '.join(given)}" if given else "got none"
            raise ValueError(
                "a Tailer connection needs exactly one of token (from `tailer auth get-token`), refresh_token "
                f"(with firebase_api_key), service_account_json or service_account_file ({found})"
            )
        if (self.refresh_token is None) != (self.firebase_api_key is None):
            raise ValueError(
                "refresh_token and firebase_api_key go together: both are in $TAILER_HOME/tailer-configuration.json "
                "(firebase_user.refreshToken and tailer_firebase_api_key) after `tailer auth login`"
            )
        return self

    @property
    def effective_audience(self) -> str:
        """The ``aud`` of minted tokens: as configured, else the API's scheme and host."""
        if self.audience:
            return self.audience
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def secret_values(self) -> list[str]:
        values = super().secret_values()
        if self.service_account_json is not None:
            data = json.loads(self.service_account_json.get_secret_value())
            values.append(str(data["private_key"]))
        return values


class Job(JobConfig):
    """A Tailer job: the identity every API call carries."""

    account: str = Field(min_length=1, description="the Tailer account, e.g. '000099' (quote it in YAML)")
    environment: str = Field(min_length=1, description="DEV, PROD…")
    configuration_type: str = Field(min_length=1, description="table-to-table, storage-to-storage, workflow…")
    configuration_id: str = Field(min_length=1, description="as in the configuration's JSON file")
    job_id: str | None = Field(
        default=None,
        description="as Tailer names the job in its run statuses, e.g. 'storage-to-storage|000099|<configuration_id>|"
        "DEV|<file template>'; derived for table-to-table ('gbq-to-gbq|<configuration_id>_<ENV>'), required otherwise",
    )

    @field_validator("environment")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.strip().upper()

    @model_validator(mode="after")
    def _full_identity(self) -> Job:
        # "You need to provide the full identity of the job and the run ID" (seed line 39): the seed shows a
        # run-status call with job_id (line 51), and only the table-to-table job_id follows a documented rule
        if not self.job_id and self.configuration_type != "table-to-table":
            raise ValueError(
                f"job_id: required for configuration_type {self.configuration_type}: Tailer's run-status call needs "
                "the job's full identity, and the bot derives job_id only for table-to-table. Copy the job_id "
                "Tailer shows for this job's runs (Tailer Studio, or the job_id field of a get_last_status "
                "answer), e.g. 'storage-to-storage|000099|<configuration_id>|DEV|<file template>'"
            )
        return self

    def run_refusal(self) -> str | None:
        if self.configuration_type in LAUNCHABLE:
            return None
        return (
            f"Tailer's API launches only Tables to Tables and Tables to Storage data operations (configuration_type "
            f"{' or '.join(LAUNCHABLE)}); {self.configuration_type} {self.api_configuration_id()} is started by "
            "Tailer itself. The bot can watch it (watch: true) but not run it."
        )

    def api_configuration_id(self) -> str:
        """The id as Tailer knows it: table-to-table ids end with ``_<ENVIRONMENT>``, added if missing."""
        suffix = f"_{self.environment}"
        if self.configuration_type == "table-to-table" and not self.configuration_id.endswith(suffix):
            return self.configuration_id + suffix
        return self.configuration_id

    def status_job_id(self) -> str:
        """The ``job_id`` a run-status request names: as configured, else Tailer's for table-to-table
        (``gbq-to-gbq|`` and the configuration id with its environment: seed line 51, and tailer-sdk's
        ``template_main.py`` with ``sql_dag_generator.py``'s DAG name)."""
        if self.job_id:
            return self.job_id
        return f"gbq-to-gbq|{self.api_configuration_id()}"  # _full_identity: only table-to-table lacks one

    def describe(self) -> str:
        return f"{self.configuration_type} {self.api_configuration_id()} (account {self.account}, {self.environment})"


# -- authentication -------------------------------------------------------------------------------


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


# -- client ---------------------------------------------------------------------------------------

_DAG_LAUNCH = "v1/dag/launch"
_DAG_STATUS = "v1/dag/status"
_CONFIGURATION = "v1/configuration/status"
_WORKFLOW = "v1/workflow/status"


class Client(ProviderClient[Connection, Job]):
    provider: ClassVar[str] = "tailer"
    display_name: ClassVar[str] = "Tailer"
    http2: ClassVar[bool] = True
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.LIST_RUNS, Capability.ENABLE, Capability.DISABLE, Capability.ARCHIVE, Capability.RESET}
    )

    @classmethod
    def connection_problems(cls, connection: Connection) -> list[str]:
        """A ``service_account_file`` that cannot be read or is no service-account key (never quoting it)."""
        if connection.service_account_file is None:
            return []
        try:
            _key_file(connection.service_account_file, "")
        except ConfigError as exc:
            return list(exc.problems)
        return []

    def __init__(
        self,
        name: str,
        connection: Connection,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.authn: _StaticToken | ServiceAccountAuth | FirebaseSession = _build_auth(
            name, connection, clock, self._session_error
        )
        self._auth_detail = ""
        super().__init__(name, connection, http=http, retry=retry, sleep=sleep)
        # the minted token and a key read from a file are secrets the connection does not hold in clear
        self.caller.redactor.add_source(self.authn.secrets)

    def _session_error(self, cls: type[ProviderError], message: str) -> ProviderError:
        return self._redacted(self.caller.error(cls, f"Connection {self.name}: {message}"))

    def _auth(self) -> httpx.Auth:
        return self.authn

    def _error_text(self, response: httpx.Response) -> str:
        # HttpCaller hands over the answer redacted; once more for what decoding the JSON revealed
        text = self.caller.redact(super()._error_text(response))
        if response.status_code == 401:
            self._auth_detail = text  # Tailer's words ("Jwt is expired"…) for the 401 message
        return text

    # -- run and status ---------------------------------------------------------------------

    async def trigger(self, job: Job, parameters: Mapping[str, str]) -> Triggered:
        refusal = job.run_refusal()
        if refusal is not None:
            raise OperationNotSupported(refusal, provider=self.display_name, connection=self.name)
        other = sorted(k for k in parameters if k != "execution_date")
        if other:
            raise ProviderRejected(
                f"Tailer runs accept only execution_date as a parameter (got {', '.join(other)}).",
                provider=self.display_name,
                connection=self.name,
            )
        # the seed's launch (line 24-28) names no job_id: the configuration is what is launched
        body = self._body(job, "launch_job", execution_date=parameters.get("execution_date"))
        what = f"launch {job.describe()}"
        try:
            answer = await self._post(job, _DAG_LAUNCH, body, what, idempotent=False)
            return Triggered(run_id=parse_launch(answer, self._shown))
        except (ValueError, ProviderResponseError) as exc:
            # a 2xx Tailer answered without a readable run id: the job may well have started
            raise self._redacted(
                self.caller.error(
                    TriggerOutcomeUnknown,
                    f"Tailer's answer to {what} has no readable run id ({exc}): it is unknown whether it started. "
                    f"Check {self._console()} before trying again.",
                )
            ) from None

    async def get_status(self, job: Job, run_id: str) -> RunStatus:
        body = self._body(job, "check_run_status", job_id=job.status_job_id(), run_id=run_id)
        what = f"check run {run_id} of {job.describe()}"
        runs = self._runs(await self._post(job, _DAG_STATUS, body, what, idempotent=True), what)
        mine = next((r for r in runs if r.run_id == run_id), None)
        if mine is None:
            # another run's status says nothing about this one: no news, never its outcome
            listed = f"it lists {len(runs)} other run(s)" if runs else f"it lists no run. {_check_identity(job)}"
            raise self._redacted(
                self.caller.error(
                    ProviderNoNews,
                    f"Tailer's answer about run {run_id} of {job.describe()} does not name that run ({listed}): "
                    "no news this time; the run stays as it was.",
                )
            )
        return mine

    async def list_runs(self, job: Job, *, since: datetime, limit: int = 50) -> list[RunStatus]:
        """Newest first; runs that started before ``since`` are left out."""
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        runs = await self.last_status(job, limit=limit)
        recent = [r for r in runs if r.started_at is None or r.started_at >= since]
        oldest = datetime.min.replace(tzinfo=UTC)
        return sorted(recent, key=lambda r: r.started_at or oldest, reverse=True)

    async def last_status(
        self, job: Job, *, limit: int = 10, status: str | None = None, execution_date: str | date | None = None
    ) -> list[RunStatus]:
        """The latest runs of a job (``get_last_status``), optionally only those with ``status``.

        Sent with the fields the seed shows (lines 87-91, 198-205): no ``job_id``. A configuration's answer
        may hold several jobs (a storage-to-storage one lists each file template's), so entries naming
        another ``job_id`` are left out here."""
        extra = {"status": status.upper() if status else None}
        runs = await self._query(job, "get_last_status", limit, execution_date, extra, f"list runs of {job.describe()}")
        wanted = job.status_job_id()
        return [r for r in runs if r.extra.get("job_id") in (None, wanted)]

    async def runs_by_status(
        self, job: Job, status: str, *, limit: int = 10, execution_date: str | date | None = None
    ) -> list[RunStatus]:
        """The latest runs of a job that have ``status`` (``get_by_status``), e.g. FAILED.

        An assumption: no vendor source documents ``get_by_status``; the bot itself never calls it."""
        what = f"list {status.upper()} runs of {job.describe()}"
        return await self._query(job, "get_by_status", limit, execution_date, {"status": status.upper()}, what)

    async def _query(
        self,
        job: Job,
        action: str,
        limit: int,
        execution_date: str | date | None,
        extra: Mapping[str, Any],
        what: str,
    ) -> list[RunStatus]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        day = execution_date.isoformat() if isinstance(execution_date, date) else execution_date
        body = self._body(job, action, execution_date=day, limit=limit, **extra)
        return self._runs(await self._post(job, _DAG_STATUS, body, what, idempotent=True), what)[:limit]

    # -- configuration and workflow ---------------------------------------------------------

    async def enable(self, job: Job) -> None:
        await self._set_configuration(job, "enable", activated=True, archived=False)

    async def disable(self, job: Job) -> None:
        await self._set_configuration(job, "disable", activated=False, archived=False)

    async def archive(self, job: Job) -> None:
        await self._set_configuration(job, "archive", activated=False, archived=True)

    async def reset(self, job: Job) -> None:
        """Reset a workflow: Tailer forgets which of its triggering jobs already ran."""
        if job.configuration_type != "workflow":
            raise ProviderRejected(
                f"Tailer resets only workflow data operations; {job.describe()} is not one. "
                "Point the pipeline at the workflow's configuration to reset it.",
                provider=self.display_name,
                connection=self.name,
            )
        body = self._body(job, "reset_workflow_status")
        await self._change(job, _WORKFLOW, body, f"reset the workflow {job.describe()}")

    async def cancel(self, job: Job, run_id: str) -> None:
        raise OperationNotSupported(
            "Tailer has no cancel: a launched run goes on until it ends. To stop further runs, disable the "
            "configuration (its runs then report DEACTIVATED).",
            provider=self.display_name,
            connection=self.name,
        )

    async def _set_configuration(self, job: Job, verb: str, *, activated: bool, archived: bool) -> None:
        body = self._body(job, "set_configuration_status", activated=activated, archived=archived)
        await self._change(job, _CONFIGURATION, body, f"{verb} {job.describe()}")

    async def _change(self, job: Job, path: str, body: dict[str, Any], what: str) -> None:
        """Sent once; an answer that leaves the outcome open says to look in Tailer Studio."""
        try:
            await self._post(job, path, body, what, idempotent=False)
        except TriggerOutcomeUnknown as err:
            err.args = (
                self.caller.redact(
                    f"Tailer did not give a clear answer when asked to {what}"
                    f"{f' (HTTP {err.status_code})' if err.status_code else ''}: it is unknown whether the "
                    f"change was made. Check the configuration in {self._console()} before trying again."
                ),
            )
            raise

    # -- plumbing ---------------------------------------------------------------------------

    def console_url(self, job: Job, run_id: str | None = None) -> str | None:
        return self.connection.console_url

    def credential_deadline(self) -> tuple[datetime, str] | None:
        """A static token's ``exp``: the bot cannot renew it. None for the credentials it renews itself."""
        if isinstance(self.authn, _StaticToken) and self.authn.expires_at is not None:
            return datetime.fromtimestamp(self.authn.expires_at, UTC), _RENEW_STATIC
        return None

    async def __aenter__(self) -> Client:
        return self  # typed as this class, so `async with` gives access to last_status, authn…

    def _console(self) -> str:
        return f"Tailer Studio ({self.connection.console_url})" if self.connection.console_url else "Tailer Studio"

    def _body(self, job: Job, action: str, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "action": action,
            "account": job.account,
            "environment": job.environment,
            "configuration_type": job.configuration_type,
            "configuration_id": job.api_configuration_id(),
        }
        body.update({k: v for k, v in extra.items() if v is not None})
        return body

    async def _post(self, job: Job, path: str, body: dict[str, Any], what: str, *, idempotent: bool) -> Any:
        """POST, map failures to typed errors with Tailer's hints, and refuse answers that are not ok."""
        self._refuse_expired(what)
        call = Call("POST", path, what, idempotent=idempotent, json=body)
        try:
            answer = await self._json(call)
        except ProviderAuthError as err:
            if err.status_code == 401:
                raise self._refused(what) from None
            raise self._redacted(err) from None
        except ProviderNotFound as err:
            err.args = (f"{err} {_check_identity(job)}",)
            raise self._redacted(err) from None
        except ProviderError as err:
            raise self._redacted(err) from None
        problem = answer_error(answer, self._shown)
        if problem is not None:
            refused = self.caller.error(ProviderRejected, f"Tailer refused to {what}: it answered {problem}.")
            raise self._redacted(refused)
        return answer

    def _runs(self, answer: Any, what: str) -> list[RunStatus]:
        try:
            return [self.caller.redact_status(run) for run in parse_results(answer, self._shown)]
        except ValueError as exc:
            raise self._redacted(
                self.caller.error(ProviderResponseError, f"Tailer's answer to {what} is not understood: {exc}")
            ) from None

    def _refuse_expired(self, what: str) -> None:
        """A static token past its ``exp`` is not sent: Tailer would answer 401 to every poll."""
        deadline = self.credential_deadline()
        if deadline is None or deadline[0].timestamp() > self._clock():
            return
        raise self._redacted(
            self.caller.error(
                ProviderAuthError,
                f"The Tailer token of connection {self.name} expired at {deadline[0]:%Y-%m-%d %H:%M} UTC; the bot "
                f"did not {what} with it. {deadline[1]}",
            )
        )

    def _refused(self, what: str) -> ProviderError:
        said = f" ({self._auth_detail})" if self._auth_detail else ""
        if isinstance(self.authn, FirebaseSession):
            message = (
                f"Tailer refused the token renewed with the refresh token of connection {self.name} (HTTP 401)"
                f"{said} when asked to {what}. Check that this Tailer user may use account and configuration, or "
                "run `tailer auth login` again and copy the new firebase_user.refreshToken from "
                "$TAILER_HOME/tailer-configuration.json."
            )
        elif isinstance(self.authn, ServiceAccountAuth):
            message = (
                f"Tailer refused the token signed with service account {self.authn.key.client_email} for "
                f"connection {self.name} (HTTP 401){said} when asked to {what}. Check that the key is valid and "
                f"not revoked, that the account has access to Tailer, that the audience "
                f"{self.authn.audience} is right, and that this machine's clock is right."
            )
        else:
            message = (
                f"Tailer refused the token of connection {self.name} (HTTP 401){said} when asked to {what}: "
                f"it has expired (they last about an hour) or is wrong. {_RENEW_STATIC}"
            )
        return self._redacted(self.caller.error(ProviderAuthError, message, status_code=401))

    def _redacted(self, err: ProviderError) -> ProviderError:
        """A message rewritten here (advice added) redacted again, with the minted token and key as well."""
        err.args = (self.caller.redact(str(err)),)
        return err

    def _shown(self, value: Any) -> str:
        """A piece of an answer quoted in a message: redacted, then cut."""
        return repr(self.caller.excerpt(value, 200))


_RENEW_STATIC = (
    "Run `tailer auth get-token`, put the new token in the connection's environment variable and restart the "
    "bot; or give the connection refresh_token and firebase_api_key (from $TAILER_HOME/tailer-configuration.json "
    "after `tailer auth login`) so that the bot renews its tokens itself, as tailer-sdk does."
)


def _check_identity(job: Job) -> str:
    """What to check in pipelines.yml when Tailer does not know a job or run."""
    fields = (
        "account, environment, configuration_type, configuration_id and job_id"
        if job.job_id
        else "account, environment, configuration_type and configuration_id"
    )
    sent = job.api_configuration_id()
    added = " (the bot appends the environment to table-to-table ids)" if sent != job.configuration_id else ""
    return f"Check {fields} in pipelines.yml; Tailer was asked for configuration_id {sent}{added}."


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
