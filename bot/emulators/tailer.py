"""Tailer API, as its "API features" page describes it.

Every call is a POST with a JSON body (read whatever the content type says) carrying ``action``,
``account``, ``environment``, ``configuration_type`` and ``configuration_id``:

- ``/v1/dag/launch`` ``launch_job`` → ``{"run_id": "20201230-113940-<uuid4>"}`` (route "trigger");
- ``/v1/dag/status`` ``check_run_status`` / ``get_last_status`` / ``get_by_status`` → ``{"results": [...]}``,
  newest first (route "status"; an unknown run gives an empty list);
- ``/v1/configuration/status`` ``set_configuration_status`` → ``{"message": "ok"}`` (route "configuration");
- ``/v1/workflow/status`` ``reset_workflow_status`` → ``{"code": 200, "data": {}, "message": "ok"}``
  (route "workflow").

Jobs are keyed in ``EmulatorState`` by ``configuration_id`` as sent: a table-to-table id must carry
its ``_<ENV>`` suffix or it is unknown (404). Only table-to-table and table-to-storage configurations
can be launched (400 otherwise). ``check_run_status`` needs the job's ``job_id`` (400 without it). A
disabled or archived configuration refuses launches (400) and its live runs end DEACTIVATED. A failure
outcome whose message starts with ``NO_MATCH`` ends NO_MATCH instead of FAILED; ``mark_checked`` turns
a failed run into CHECKED, as a person does in Tailer Studio.

Bearer JWTs: ``tokens`` are accepted as they are (like tokens from ``tailer auth get-token``) until
their ``exp``; ``refresh_tokens`` are exchanged for one-hour ID tokens at ``POST /v1/token?key=…``
(Google's token service, where tailer-sdk renews its token; ``firebase_api_key`` is the key it wants,
any when None); ``service_accounts`` maps a client email to its PEM public key (or certificate), and
tokens that account signs are verified (RS256 signature, ``iss``, ``aud``, ``exp``). Times are the
state's clock. With no tokens, refresh tokens nor service accounts, any bearer token is accepted.
Refusals answer 401 as Cloud Run's gateway does (``{"code": 401, "message": "Jwt is expired"}``…).

Strict mode (``strict=True``, ``pipeline-bot emulate tailer --strict``) serves only what has a source
(docs/PROVIDERS.md, "Tailer: provenance"): a request with an action or a field no source shows, or a
service-account token, is refused with 400 ``strict: no source for …``; answers leave out fields and
status values no source shows.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bot.emulators._core import EmulatorState, EmuRun, Json, JsonValue, Outcome
from bot.emulators._server import EmulatorServer, Route, json_response, read_body

__all__ = ["TailerEmulator"]

_IDENTITY = ("account", "environment", "configuration_type", "configuration_id")
_STATUS_ACTIONS = ("check_run_status", "get_last_status", "get_by_status")
#: the request fields each action's source shows (tailer-api-features.txt, by line); strict mode refuses others
_SOURCED: dict[str, frozenset[str]] = {
    "launch_job": frozenset({"action", *_IDENTITY, "execution_date"}),  # lines 17, 24-28
    "check_run_status": frozenset({"action", *_IDENTITY, "job_id", "run_id"}),  # lines 39, 46-52
    "get_last_status": frozenset({"action", *_IDENTITY, "execution_date", "status", "limit"}),  # 87-91, 198-205
    "reset_workflow_status": frozenset({"action", *_IDENTITY}),  # lines 254-258
    "set_configuration_status": frozenset({"action", *_IDENTITY, "activated", "archived"}),  # lines 276-282
}
#: "Tables to Tables or Tables to Storage data operations can be launched through the Tailer API" (line 15)
_LAUNCHABLE = ("table-to-table", "table-to-storage")
#: run statuses with a source: the seed (SUCCESS), tailer-sdk's DAG template (WAITING, RUNNING, SUCCESS,
#: DEACTIVATED in template_main.py, FAILED in sql_dag_generator.py)
_SOURCED_STATUSES = frozenset({"WAITING", "RUNNING", "SUCCESS", "FAILED", "DEACTIVATED"})
_ID_TOKEN_LIFETIME_S = 3600
_PHASES = {"queued": "WAITING", "running": "RUNNING", "succeeded": "SUCCESS", "failed": "FAILED",
           "canceled": "DEACTIVATED"}
_CLOCK_SKEW_S = 60.0
_DEFAULT_LIMIT = 10


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class TailerEmulator(EmulatorServer):
    provider: ClassVar[str] = "tailer"

    def __init__(
        self,
        state: EmulatorState | None = None,
        *,
        tokens: Iterable[str] = (),
        service_accounts: Mapping[str, str] | None = None,
        audience: str | None = None,
        refresh_tokens: Iterable[str] = (),
        firebase_api_key: str | None = None,
        strict: bool = False,
    ) -> None:
        super().__init__(state)
        #: serve only what has a source (see the module docstring)
        self.strict = strict
        self.tokens = set(tokens)
        self.refresh_tokens = set(refresh_tokens)
        self.firebase_api_key = firebase_api_key
        #: ID tokens handed out for refresh tokens → their exp
        self.id_tokens: dict[str, float] = {}
        #: ``check_run_status`` answers with the configuration's newest run, whichever was asked for: nothing
        #: documents that Tailer filters on ``run_id``, and a client must never take it for its run's status
        self.newest_for_any_run = False
        self.service_accounts = _checked_keys(service_accounts or {})
        #: the ``aud`` service-account tokens must carry; None: this emulator's own URL
        self.audience = audience
        #: configuration_id → {"activated": bool, "archived": bool}, as last set
        self.configurations: dict[str, dict[str, bool]] = {}
        #: configuration_id → how many times the workflow was reset
        self.resets: dict[str, int] = {}
        #: run ids a person marked as handled (CHECKED)
        self.checked: set[str] = set()
        # configuration_id → account, environment, configuration_type, as last sent
        self._identity: dict[str, dict[str, str]] = {}

    @property
    def accept_any(self) -> bool:
        return not self.tokens and not self.service_accounts and not self.refresh_tokens

    def configure(self, scenario: Mapping[str, JsonValue]) -> None:
        scenario = dict(scenario)
        if "strict" in scenario:
            self.strict = bool(scenario.pop("strict"))
        if "newest_for_any_run" in scenario:
            self.newest_for_any_run = bool(scenario.pop("newest_for_any_run"))
        if "tokens" in scenario:
            self.tokens = set(scenario.pop("tokens"))
        if "refresh_tokens" in scenario:
            self.refresh_tokens = set(scenario.pop("refresh_tokens"))
        if "firebase_api_key" in scenario:
            self.firebase_api_key = scenario.pop("firebase_api_key")
        if "service_accounts" in scenario:
            self.service_accounts = _checked_keys(scenario.pop("service_accounts"))
        if "audience" in scenario:
            self.audience = scenario.pop("audience")
        super().configure(scenario)

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/v1/dag/launch", "trigger", self.on_launch),
            Route("POST", "/v1/dag/status", "status", self.on_status),
            Route("POST", "/v1/workflow/status", "workflow", self.on_workflow),
            Route("POST", "/v1/configuration/status", "configuration", self.on_configuration),
            Route("POST", "/v1/token", "token", self.on_token),
        ]

    async def __aenter__(self) -> TailerEmulator:
        await self.start()
        return self

    def expired_token_response(self) -> web.StreamResponse:
        return json_response({"code": 401, "message": "Jwt is expired"}, 401)

    # -- scripting helpers --------------------------------------------------------------------

    def mark_checked(self, run_id: str) -> None:
        """What a person does in Tailer Studio for a failed run they have handled."""
        self.checked.add(run_id)

    def external_run(self, job: str, parameters: Mapping[str, JsonValue], outcome: Outcome | None = None) -> str:
        """A run started by Tailer's scheduler or a file arrival, with the identity last seen for ``job``."""
        return self._start(job, self._identity_of(job), dict(parameters), None, external=True, outcome=outcome).run_id

    def _identity_of(self, cid: str) -> dict[str, str]:
        """The identity last sent for a configuration, else one guessed from its id."""
        return self._identity.get(cid) or {
            "account": cid.split("_")[0].split("-")[0],
            "environment": cid.rsplit("_", 1)[-1] if "_" in cid and cid.rsplit("_", 1)[-1].isupper() else "DEV",
            "configuration_type": "table-to-table",
        }

    def _meta(self, run: EmuRun) -> Json:
        """A run's identity; runs started on the state directly get one on first sight."""
        if "job_id" not in run.extra:
            identity = self._identity_of(run.job)
            run.extra.update(identity, job_id=_default_job_id(run.job, identity))
        return run.extra

    # -- auth -------------------------------------------------------------------------------

    def _refusal(self, request: web.Request) -> web.Response | None:
        """None when the bearer token is accepted, else the 401 (or, strict, the 400) to answer."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return json_response({"code": 401, "message": "Jwt is missing"}, 401)
        now = self.state.now()
        if token in self.id_tokens:
            expired = self.id_tokens[token] <= now - _CLOCK_SKEW_S
            return json_response({"code": 401, "message": "Jwt is expired"}, 401) if expired else None
        if self.accept_any or token in self.tokens:
            exp = _claims(token).get("exp")
            if isinstance(exp, int | float) and exp <= now - _CLOCK_SKEW_S:
                return json_response({"code": 401, "message": "Jwt is expired"}, 401)
            return None
        if not self.service_accounts:
            return json_response({"code": 401, "message": "Jwt verification fails"}, 401)
        if self.strict:
            return _strict("service-account tokens (only tokens from tailer auth are documented)")
        problem = self._jwt_problem(token)
        return None if problem is None else json_response({"code": 401, "message": problem}, 401)

    async def on_token(self, request: web.Request) -> web.StreamResponse:
        """Google's token service as tailer-sdk's firebase library uses it (``Auth.refresh``)."""
        body = await read_body(request)
        body = body if isinstance(body, dict) else {}
        # the firebase library sends camelCase JSON; Google's reference shows grant_type / refresh_token
        grant = body.get("grantType", body.get("grant_type"))
        refresh = body.get("refreshToken", body.get("refresh_token"))
        key = request.query.get("key", "")
        if not key or (self.firebase_api_key is not None and key != self.firebase_api_key):
            return _google_error(400, "API key not valid. Please pass a valid API key.")
        if grant != "refresh_token":
            return _google_error(400, "INVALID_GRANT_TYPE")
        if not isinstance(refresh, str) or not refresh:
            return _google_error(400, "MISSING_REFRESH_TOKEN")
        if refresh not in self.refresh_tokens:
            return _google_error(400, "INVALID_REFRESH_TOKEN")
        now = int(self.state.now())
        user = self.state.new_id()[:28]
        claims = {"user_id": user, "sub": user, "iat": now, "exp": now + _ID_TOKEN_LIFETIME_S}
        token = ".".join(
            base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
            for part in ({"alg": "RS256", "kid": "emulator"}, claims, self.state.new_id())
        )
        self.id_tokens[token] = float(now + _ID_TOKEN_LIFETIME_S)
        # the three fields tailer-sdk's firebase library reads
        answer: Json = {"id_token": token, "refresh_token": refresh, "user_id": user}
        if not self.strict:  # the rest of Google's answer, which no client here reads
            answer.update(expires_in=str(_ID_TOKEN_LIFETIME_S), token_type="Bearer", project_id="tailer-emulator")
        return json_response(answer)

    def _jwt_problem(self, token: str) -> str | None:
        """Check a service-account JWT: signature with the account's key, issuer, audience, expiry."""
        parts = token.split(".")
        if len(parts) != 3:
            return "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
        try:
            header = json.loads(_b64decode(parts[0]))
            claims = json.loads(_b64decode(parts[1]))
            signature = _b64decode(parts[2])
        except (ValueError, binascii.Error):
            return "Jwt header is an invalid JSON"
        if not isinstance(header, dict) or not isinstance(claims, dict) or header.get("alg") != "RS256":
            return "Jwt verification fails"
        issuer = claims.get("iss")
        pem = self.service_accounts.get(issuer) if isinstance(issuer, str) else None
        if pem is None:
            return "Jwt issuer is not configured"
        if claims.get("sub") != issuer:
            return "Jwt verification fails"
        try:
            _public_key(pem).verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "Jwt verification fails"
        audiences = claims.get("aud")
        allowed = audiences if isinstance(audiences, list) else [audiences]
        if (self.audience or self.url) not in allowed:
            return "Audiences in Jwt are not allowed"
        now = self.state.now()
        exp, iat = claims.get("exp"), claims.get("iat", 0)
        if not isinstance(exp, int | float) or exp <= now - _CLOCK_SKEW_S:
            return "Jwt is expired"
        if not isinstance(iat, int | float) or iat > now + _CLOCK_SKEW_S:
            return "Jwt not yet valid"
        return None

    # -- requests ---------------------------------------------------------------------------

    async def _read(self, request: web.Request, actions: Iterable[str]) -> Json | web.Response:
        """The body when authorized and well-formed, else the answer to give."""
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        body = await read_body(request)
        if not isinstance(body, dict):
            return json_response({"message": "the request body must be a JSON object"}, 400)
        actions = tuple(actions)
        if body.get("action") not in actions:
            expected = " or ".join(actions)
            return json_response(
                {"message": f"Unknown action {body.get('action')!r} on {request.path}: expected {expected}"}, 400
            )
        if self.strict:
            action = str(body["action"])
            if action not in _SOURCED:
                return _strict(f"the action {action}")
            unsourced = sorted(set(body) - _SOURCED[action])
            if unsourced:
                return _strict(f"{', '.join(unsourced)} in {action}")
        missing = [f for f in _IDENTITY if not isinstance(body.get(f), str) or not body[f]]
        if missing:
            return json_response({"message": f"Missing field(s): {', '.join(missing)}"}, 400)
        self._identity[body["configuration_id"]] = {k: body[k] for k in _IDENTITY[:3]}
        return body

    def _unknown(self, body: Mapping[str, JsonValue], extra: Mapping[str, JsonValue] | None = None) -> web.Response:
        message = (
            f"Configuration {body['configuration_id']} not found for account {body['account']} "
            f"in environment {body['environment']}"
        )
        return json_response({**(extra or {}), "message": message}, 404)

    async def on_launch(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request, ("launch_job",))
        if isinstance(body, web.Response):
            return body
        cid = body["configuration_id"]
        if body["configuration_type"] not in _LAUNCHABLE:
            return json_response(
                {"message": f"{body['configuration_type']} configurations cannot be launched through the API: only "
                 f"{' and '.join(_LAUNCHABLE)} ones can"},
                400,
            )
        if not self.state.knows(cid):
            return self._unknown(body)
        config = self.configurations.get(cid, {"activated": True, "archived": False})
        if config["archived"]:
            return json_response({"message": f"Configuration {cid} is archived: it cannot be launched"}, 400)
        if not config["activated"]:
            return json_response(
                {"message": f"Configuration {cid} is deactivated: activate it before launching a job"}, 400
            )
        parameters = {"execution_date": body["execution_date"]} if body.get("execution_date") else {}
        job_id = body.get("job_id") if isinstance(body.get("job_id"), str) else None
        run = self._start(cid, body, parameters, job_id)
        return json_response({"run_id": run.run_id})

    async def on_status(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request, _STATUS_ACTIONS)
        if isinstance(body, web.Response):
            return body
        action = body["action"]
        cid = body["configuration_id"]
        if action == "check_run_status":
            missing = [f for f in ("job_id", "run_id") if not body.get(f)]
            if missing:  # "the full identity of the job and the run ID" (seed line 39)
                return json_response({"message": f"Missing field(s): {', '.join(missing)}"}, 400)
            if self.newest_for_any_run:
                newest = self.state.runs_of(cid)[:1]
                return json_response({"results": [self._entry(r, listed=False) for r in newest]})
            run = self.state.runs.get(str(body["run_id"]))
            found = run is not None and run.job == cid and body.get("job_id") in (None, self._meta(run)["job_id"])
            return json_response({"results": [self._entry(run, listed=False)] if found and run else []})
        if action == "get_by_status" and not body.get("status"):
            return json_response({"message": "Missing field(s): status"}, 400)
        try:
            limit = int(body.get("limit", _DEFAULT_LIMIT))
        except (TypeError, ValueError):
            return json_response({"message": f"limit must be a number, not {body.get('limit')!r}"}, 400)
        if limit < 1:
            return json_response({"message": "limit must be at least 1"}, 400)
        entries = [
            self._entry(run, listed=True)
            for run in self.state.runs_of(cid)
            if body.get("job_id") in (None, self._meta(run)["job_id"])
            and self._on_date(run, body.get("execution_date"))
        ]
        if body.get("status"):
            entries = [e for e in entries if e["status"] == str(body["status"]).upper()]
        return json_response({"results": entries[:limit]})

    async def on_configuration(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request, ("set_configuration_status",))
        if isinstance(body, web.Response):
            return body
        flags = {k: body.get(k) for k in ("activated", "archived")}
        wrong = [k for k, v in flags.items() if not isinstance(v, bool)]
        if wrong:
            return json_response({"message": f"{' and '.join(wrong)} must be true or false"}, 400)
        cid = body["configuration_id"]
        if not self.state.knows(cid):
            return self._unknown(body)
        self.configurations[cid] = {"activated": bool(flags["activated"]), "archived": bool(flags["archived"])}
        if not flags["activated"] or flags["archived"]:
            for run in self.state.runs_of(cid):
                self.state.cancel(run)  # live runs end DEACTIVATED
        return json_response({"message": "ok"})

    async def on_workflow(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request, ("reset_workflow_status",))
        if isinstance(body, web.Response):
            return body
        if body["configuration_type"] != "workflow":
            return json_response(
                {"code": 400, "data": {}, "message": f"{body['configuration_type']} is not a workflow configuration"},
                400,
            )
        cid = body["configuration_id"]
        if not self.state.knows(cid):
            return self._unknown(body, {"code": 404, "data": {}})
        self.resets[cid] = self.resets.get(cid, 0) + 1
        return json_response({"code": 200, "data": {}, "message": "ok"})

    # -- runs -------------------------------------------------------------------------------

    def _start(
        self,
        cid: str,
        identity: Mapping[str, JsonValue],
        parameters: Json,
        job_id: str | None,
        *,
        external: bool = False,
        outcome: Outcome | None = None,
    ) -> EmuRun:
        ctype = str(identity["configuration_type"])
        now = datetime.fromtimestamp(self.state.now(), UTC)
        # file-triggered storage-to-storage runs have day-only ids, as in the vendor's samples
        stamp = now.strftime("%Y%m%d") if ctype == "storage-to-storage" else now.strftime("%Y%m%d-%H%M%S")
        run = self.state.start_run(
            cid, parameters, run_id=f"{stamp}-{self.state.new_id('uuid')}", external=external, outcome=outcome
        )
        run.extra.update(
            account=str(identity["account"]),
            environment=str(identity["environment"]),
            configuration_type=ctype,
            job_id=job_id or _default_job_id(cid, identity),
        )
        return run

    def status_of(self, run: EmuRun) -> str:
        phase = run.phase(self.state.now())
        status = _PHASES[phase]
        if phase == "failed":
            if run.outcome.message.upper().startswith("NO_MATCH"):
                status = "NO_MATCH"
            if run.run_id in self.checked:
                status = "CHECKED"
        if self.strict and status not in _SOURCED_STATUSES:
            return _PHASES[phase]  # NO_MATCH and CHECKED have no source: a plain FAILED
        return status

    def _entry(self, run: EmuRun, *, listed: bool) -> Json:
        """One ``results`` entry, keys in the vendor's order.

        In ``get_last_status`` answers the vendor's samples give the job's type (``gbq-to-gbq``) as
        ``configuration_type`` and no ``last_update_date`` for storage-to-storage runs: so does this.
        """
        now = self.state.now()
        phase = run.phase(now)
        started = run.created_at if phase == "queued" else run.started_at()
        ended = run.ended_at(now)
        updated = ended if ended is not None else started
        meta = self._meta(run)
        ctype = meta["configuration_type"]
        entry: Json = {
            "account": meta["account"],
            "configuration_id": run.job,
            "configuration_type": meta["job_id"].split("|")[0] if listed else ctype,
            "duration": str(timedelta(seconds=max((ended if ended is not None else now) - started, 0.0))),
            "environment": meta["environment"],
            "job_id": meta["job_id"],
            "last_update_date": _iso(updated),
            "run_id": run.run_id,
            "start_execution_date": _iso(started),
            "status": self.status_of(run),
        }
        if listed and ctype == "storage-to-storage":
            del entry["last_update_date"]
        return entry

    def _on_date(self, run: EmuRun, day: object) -> bool:
        """``execution_date`` filter: the run's start date, or the execution_date it was launched with."""
        if not day:
            return True
        wanted = str(day)[:10]
        started = datetime.fromtimestamp(run.started_at(), UTC).date().isoformat()
        return wanted in (started, str(run.parameters.get("execution_date", ""))[:10])


def _default_job_id(cid: str, identity: Mapping[str, JsonValue]) -> str:
    """Tailer's job ids, as its samples show them for table-to-table and storage-to-storage."""
    ctype = str(identity["configuration_type"])
    if ctype == "table-to-table":
        return f"gbq-to-gbq|{cid}"
    if ctype == "storage-to-storage":
        return f"storage-to-storage|{identity['account']}|{cid}|{identity['environment']}|file-{{{{FD_DATE}}}}.csv"
    return f"{ctype}|{cid}"


def _strict(what: str) -> web.Response:
    return json_response({"message": f"strict: no source for {what}"}, 400)


def _google_error(code: int, message: str) -> web.Response:
    """Google's error shape, as tailer-sdk's login reads it (``error.message``)."""
    return json_response({"error": {"code": code, "message": message}}, code)


def _claims(token: str) -> Json:
    """A JWT's claims, unverified; {} for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(_b64decode(parts[1]))
    except (ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


_KEYS: dict[str, rsa.RSAPublicKey] = {}


def _checked_keys(accounts: Mapping[str, str]) -> dict[str, str]:
    """Service accounts with keys that load: a bad key is a setup error, not a 500 at the first call."""
    for pem in accounts.values():
        _public_key(pem)
    return dict(accounts)


def _public_key(pem: str) -> rsa.RSAPublicKey:
    """A PEM public key or X.509 certificate (Google publishes both for service accounts)."""
    if pem not in _KEYS:
        data = pem.encode()
        key = (
            x509.load_pem_x509_certificate(data).public_key()
            if b"BEGIN CERTIFICATE" in data
            else serialization.load_pem_public_key(data)
        )
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("service account keys must be RSA keys")
        _KEYS[pem] = key
    return _KEYS[pem]
