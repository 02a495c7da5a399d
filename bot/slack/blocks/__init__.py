"""Pure Block Kit builders: data in, ``(text, blocks)`` or a view dict out; no I/O and no Slack client.

Slack's limits (SLACK.md) hold by construction: texts are cut with a note, lists are capped and counted,
and every untrusted string is escaped, so any input yields a payload Slack accepts and no text can ping.
The action ids and button values the listeners rely on are in ``ids``.
"""

from __future__ import annotations

from bot.slack.blocks import ids
from bot.slack.blocks.card import CardView, run_card
from bot.slack.blocks.listing import catalog_list
from bot.slack.blocks.modal import parameters_from_state, pipeline_from_state, run_modal, submission_errors
from bot.slack.blocks.replies import (
    confirm_op,
    ephemeral_error,
    failure_details,
    last_runs,
    mute_answer,
    notice,
    stats,
    status_list,
)

__all__ = [
    "CardView",
    "catalog_list",
    "confirm_op",
    "ephemeral_error",
    "failure_details",
    "ids",
    "last_runs",
    "mute_answer",
    "notice",
    "parameters_from_state",
    "pipeline_from_state",
    "run_card",
    "run_modal",
    "stats",
    "status_list",
    "submission_errors",
]
