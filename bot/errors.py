"""The bot's exception tree. Every error carries a message a person can act on.

    PipelineBotError
    ├── UserError                    a request a person made cannot be done: the message says why and what would
    │   ├── NotAllowed               the person may not do this: names who may
    │   └── InvalidRequest           bad parameter, wrong state (retry of a running run…)
    ├── ConfigError                  settings or catalog invalid: ``problems`` lists each with its path
    ├── StartupError                 the process cannot start (database unreachable, another process on the file)
    └── ProviderError                anything a provider call went wrong with (provider, connection)
        ├── ProviderAuthError        credentials refused: bad or expired token, wrong password
        ├── ProviderNotFound         the provider does not know the job or run
        ├── ProviderRejected         the provider refused the request as invalid (4xx other than above)
        ├── ProviderUnavailable      unreachable, timed out, 5xx or 429 after retries: try again later
        ├── ProviderResponseError    the answer could not be understood (malformed body)
        ├── ProviderNoNews           it answered, but said nothing about the run asked for: no news this time
        ├── TriggerOutcomeUnknown    a trigger may or may not have started a run: check the console
        └── OperationNotSupported    the provider has no such operation (e.g. cancel on Tailer)

Messages never contain secrets: provider clients pass every text through their redactor.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "InvalidRequest",
    "NotAllowed",
    "OperationNotSupported",
    "PipelineBotError",
    "ProviderAuthError",
    "ProviderError",
    "ProviderNoNews",
    "ProviderNotFound",
    "ProviderRejected",
    "ProviderResponseError",
    "ProviderUnavailable",
    "StartupError",
    "TriggerOutcomeUnknown",
    "UserError",
]


class PipelineBotError(Exception):
    """Base of every error the bot raises on purpose."""


class UserError(PipelineBotError):
    """A request cannot be done; ``str(err)`` is the (mrkdwn-safe) reply for the person."""


class NotAllowed(UserError):
    pass


class InvalidRequest(UserError):
    pass


class ConfigError(PipelineBotError):
    """Invalid settings or catalog. ``problems`` holds one line per problem, each with its path."""

    def __init__(self, problems: Sequence[str], source: str = "configuration") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} has {len(self.problems)} problem(s):\n{lines}")


class StartupError(PipelineBotError):
    """The process cannot start; ``str(err)`` is one line saying why and what to check (never a secret)."""


class ProviderError(PipelineBotError):
    """A provider call failed. ``str(err)`` is the message for a person."""

    #: short machine-readable kind, used in metrics and logs
    kind = "error"
    #: the provider may have done what was asked although the call failed (it went out and its answer was lost, or
    #: was a 5xx): a cancel answered so may have been taken. False: it was refused, or never reached the provider
    outcome_unknown = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        connection: str = "",
        status_code: int | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        self.provider = provider
        self.connection = connection
        self.status_code = status_code
        if outcome_unknown:
            self.outcome_unknown = True
        super().__init__(message)


class ProviderAuthError(ProviderError):
    kind = "auth"


class ProviderNotFound(ProviderError):
    kind = "not_found"


class ProviderRejected(ProviderError):
    kind = "rejected"


class ProviderUnavailable(ProviderError):
    kind = "unavailable"

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        connection: str = "",
        status_code: int | None = None,
        retry_after: float | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(
            message, provider=provider, connection=connection, status_code=status_code, outcome_unknown=outcome_unknown
        )
        self.retry_after = retry_after


class ProviderResponseError(ProviderError):
    kind = "bad_response"


class ProviderNoNews(ProviderError):
    """The provider answered a status read without naming the run asked for (Tailer can list other runs).

    Not an outage and not a failure: the run stays as it was, and the next poll asks again."""

    kind = "no_news"


class TriggerOutcomeUnknown(ProviderError):
    kind = "trigger_unknown"
    outcome_unknown = True


class OperationNotSupported(ProviderError):
    kind = "unsupported"
