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

The package: ``config`` (connection, job, service-account key), ``auth`` (the three kinds of bearer token),
``answers`` (status words and runs read from answers), ``client`` (the calls).
"""

from bot.providers.tailer.answers import (
    answer_error,
    is_final_status,
    map_status,
    parse_duration,
    parse_launch,
    parse_results,
    parse_run,
)
from bot.providers.tailer.auth import FirebaseSession, ServiceAccountAuth, jwt_expiry, mint_jwt
from bot.providers.tailer.client import Client
from bot.providers.tailer.config import (
    DEFAULT_BASE_URL,
    FIREBASE_TOKEN_URL,
    LAUNCHABLE,
    Connection,
    Job,
    ServiceAccountKey,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "FIREBASE_TOKEN_URL",
    "LAUNCHABLE",
    "Client",
    "Connection",
    "FirebaseSession",
    "Job",
    "ServiceAccountAuth",
    "ServiceAccountKey",
    "answer_error",
    "is_final_status",
    "jwt_expiry",
    "map_status",
    "mint_jwt",
    "parse_duration",
    "parse_launch",
    "parse_results",
    "parse_run",
]
