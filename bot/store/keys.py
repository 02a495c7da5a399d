"""Every message key, in one place: a card's (``cards.key``), an outbox message's (``outbox.key``) and an alert's
``group_key`` (the message that announced it).

A key is what makes a message idempotent: the same key written twice is one message, so each is built from what
identifies the message (the run, the channel and day, the connection and alert), never from the time it was
written. The strings are stored: changing one would post again what was already posted. Pure functions, no I/O.
"""

from __future__ import annotations

from datetime import date, datetime

__all__ = [
    "ALERT_GROUPS_LIKE",
    "EVIDENCE",
    "RUN_CARDS_LIKE",
    "alert_group",
    "alert_group_parts",
    "back",
    "cancel_note",
    "channel_problem",
    "credential",
    "digest",
    "escalation",
    "function_completion",
    "health_group",
    "health_message",
    "is_alert_group",
    "is_run_card",
    "notify_me",
    "run_card",
    "run_evidence",
    "run_failure",
    "run_of_card",
    "run_reply",
    "run_reply_parts",
    "run_stuck",
    "step_not_started_note",
    "subscriber_note",
    "workflow_card",
    "workflow_reply",
]

_RUN = "run:"
_ALERTS = "alerts:"
#: a SQL LIKE pattern matching the key of every run's card (and of their replies)
RUN_CARDS_LIKE = _RUN + "%"
#: a SQL LIKE pattern matching the key of every alert's own message
ALERT_GROUPS_LIKE = _ALERTS + "%"


# -- a run's card and its thread ------------------------------------------------------------


def run_card(run_id: int) -> str:
    """A run's card; also the ``group_key`` of an alert the card itself announced."""
    return f"{_RUN}{run_id}"


def is_run_card(key: str) -> bool:
    return key.startswith(_RUN)


def run_of_card(key: str) -> int | None:
    """The run whose card ``key`` is; None for any other message (a reply, an alert, a workflow's card)."""
    rest = key.removeprefix(_RUN) if is_run_card(key) else ""
    return int(rest) if rest.isdigit() else None


def run_reply(run_id: int, note: str) -> str:
    """A reply in a run's thread; ``note`` names it among the run's replies (``recovered``, ``retried``…)."""
    return f"{run_card(run_id)}:{note}"


def run_failure(run_id: int) -> str:
    """The failure's details, in the run's thread."""
    return run_reply(run_id, "failure")


EVIDENCE = "evidence"


def run_evidence(run_id: int) -> str:
    """The provider's own details of a failure and what changed since the last success, in the run's thread."""
    return run_reply(run_id, EVIDENCE)


def run_reply_parts(note: str) -> tuple[str, str]:
    """What comes before and after the run's id in ``run_reply(run_id, note)``: for SQL that builds the key."""
    return _RUN, f":{note}"


def run_stuck(run_id: int) -> str:
    """The "may be stuck" notice: in the run's thread, or posted in the pipeline's channel."""
    return run_reply(run_id, "stuck")


def cancel_note(user_id: str) -> str:
    """The note of one person's asking to cancel a run (each person's once)."""
    return f"cancel:{user_id}"


# -- a workflow's card and its thread -------------------------------------------------------


def workflow_card(workflow_run_id: int) -> str:
    return f"workflow:{workflow_run_id}"


def workflow_reply(workflow_run_id: int, note: str) -> str:
    return f"{workflow_card(workflow_run_id)}:{note}"


def step_not_started_note(step: str) -> str:
    return f"step-{step}-start"


# -- alerts ---------------------------------------------------------------------------------


def alert_group(channel: str, first_alert_id: int) -> str:
    """The message announcing a burst of alerts in ``channel``, named by the first of them."""
    return f"{_ALERTS}{channel}:{first_alert_id}"


def alert_group_parts() -> tuple[str, str]:
    """What comes before the channel and between it and the first alert's id in ``alert_group``: for SQL."""
    return _ALERTS, ":"


def is_alert_group(key: str) -> bool:
    return key.startswith(_ALERTS)


def health_group(connection: str) -> str:
    """The ``group_key`` of a connection's "cannot reach" alert."""
    return f"health:{connection}"


def health_message(connection: str, alert_id: int) -> str:
    """The "cannot reach" message of one outage (one alert) of a connection."""
    return f"{health_group(connection)}:{alert_id}"


def back(key: str) -> str:
    """The one "back" notice of the outage whose message is ``key``."""
    return f"{key}:back"


def escalation(alert_id: int, step: int, waiting_since: datetime) -> str:
    """Ping ``step`` of an alert nobody acknowledged (1: its owners once more, 2: ``escalate_to``), in the wait
    that began at ``waiting_since``: a reopened alert's pings are new ones, the same ping read twice is one."""
    return f"escalate:{alert_id}:{int(waiting_since.timestamp())}:{step}"


def credential(connection: str, expires: datetime) -> str:
    """The warning that a connection's credential expires at ``expires`` (once per expiry)."""
    return f"credential:{connection}:{int(expires.timestamp())}"


# -- the digest and delivery ----------------------------------------------------------------


def digest(channel: str, day: date) -> str:
    """One channel's digest of one local day."""
    return f"digest:{channel}:{day.isoformat()}"


def channel_problem(channel: str) -> str:
    """The one notice that a channel refuses the bot's messages."""
    return f"channel-problem:{channel}"


# -- subscriptions ----------------------------------------------------------------------------


def subscriber_note(subscription_id: int, run_id: int, what: str) -> str:
    """What a subscribed channel is told of a run (``failed``, ``ended``): once per subscription and run."""
    return f"subs:{subscription_id}:{run_id}:{what}"


def notify_me(user_id: str, run_id: int) -> str:
    """The DM telling a person that a run they started ended."""
    return f"notify:{user_id}:{run_id}"


def function_completion(execution_id: str) -> str:
    """The completion of a Workflow Builder step (``functions.completeSuccess`` or ``completeError``): once per
    execution, however many times its run's end is seen."""
    return f"function:{execution_id}"
