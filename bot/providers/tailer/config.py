"""What a Tailer connection and job say in connections.yml / pipelines.yml, and a service-account key."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from bot.providers.base import ConnectionConfig, JobConfig

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_BASE_URL = "https://tailer-api-nqonovswsq-ew.a.run.app"
#: Google's token service, where tailer-sdk's firebase library renews ID tokens (``Auth.refresh``)
FIREBASE_TOKEN_URL = "https://securetoken.googleapis.com/v1/token"
#: "Tables to Tables or Tables to Storage data operations can be launched through the Tailer API" (seed line
#: 15); the values as the seed (line 27) and tailer-sdk (``tailer_configuration_manager``) spell them
LAUNCHABLE = ("table-to-table", "table-to-storage")


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
        # cryptography (6.6 MB of RSS, its OpenSSL included) only for a service-account key: a connection with a
        # token never loads it. A key is read when the catalog is loaded (``check`` and ``run`` alike), so a broken
        # install still fails before the bot serves
        try:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa
        except ImportError:  # a traceback out of the catalog's validation, not a problem
            raise ValueError(
                "reading a service account key needs the cryptography package, which this installation lacks: "
                "install the bot's requirements (pip install -r requirements.txt), or give the connection a token"
            ) from None
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
    header_secrets: ClassVar[frozenset[str]] = frozenset({"token"})
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

    @classmethod
    def header_value(cls, field: str, value: str) -> str | None:
        """The static token as sent: stripped, without a ``Bearer`` before it (``auth._StaticToken``)."""
        sent = super().header_value(field, value)
        return sent[7:].strip() if sent is not None and sent.lower().startswith("bearer ") else sent

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

    def lists_as(self, other: JobConfig) -> bool:
        # a table-to-table job_id written out as Tailer derives it is the same job (its runs' statuses name it)
        return isinstance(other, Job) and self.model_copy(update={"job_id": self.status_job_id()}) == other.model_copy(
            update={"job_id": other.status_job_id()})

    def status_job_id(self) -> str:
        """The ``job_id`` a run-status request names: as configured, else Tailer's for table-to-table
        (``gbq-to-gbq|`` and the configuration id with its environment: seed line 51, and tailer-sdk's
        ``template_main.py`` with ``sql_dag_generator.py``'s DAG name)."""
        if self.job_id:
            return self.job_id
        return f"gbq-to-gbq|{self.api_configuration_id()}"  # _full_identity: only table-to-table lacks one

    def describe(self) -> str:
        return f"{self.configuration_type} {self.api_configuration_id()} (account {self.account}, {self.environment})"

