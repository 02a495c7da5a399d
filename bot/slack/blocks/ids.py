"""The contract between the Block Kit builders and the listeners: action ids, block ids and button values.

Listeners register on these constants and parse values with the functions below; a value comes back from
the client, so the parsers treat it as input and raise ``ValueError`` on anything they did not write.
"""

from __future__ import annotations

import json
import re

__all__ = [
    "HOME_REFRESH",
    "HOME_UNMUTE",
    "HOME_UNMUTE_PATTERN",
    "LIST_RUN",
    "LIST_RUN_PATTERN",
    "LOG_EARLIER",
    "LOG_LATER",
    "LOG_MODAL",
    "MUTE_CHOICES",
    "MUTE_SET",
    "MUTE_SET_PATTERN",
    "OP_CONFIRM",
    "OP_DISMISS",
    "PARAM_ACTION",
    "PARAM_BLOCK_PREFIX",
    "PIPELINE_BLOCK",
    "PIPELINE_SELECT",
    "RUN_ACK",
    "RUN_ACK_PATTERN",
    "RUN_CANCEL",
    "RUN_CONSOLE",
    "RUN_LOG",
    "RUN_MODAL",
    "RUN_MUTE",
    "RUN_REFRESH",
    "RUN_RESUME",
    "RUN_RETRY",
    "RUN_RETRY_PATTERN",
    "RUN_STOP_FOLLOWING",
    "SUB_REMOVE",
    "SUB_REMOVE_PATTERN",
    "home_unmute_action_id",
    "list_run_action_id",
    "log_page_value",
    "mute_set_action_id",
    "mute_set_value",
    "mute_value",
    "op_value",
    "param_block_id",
    "parse_log_page_value",
    "parse_mute_set_value",
    "parse_mute_value",
    "parse_op_value",
    "parse_run_value",
    "parse_subscription_value",
]

# card buttons: value = str(run id)
RUN_REFRESH = "run.refresh"
RUN_CANCEL = "run.cancel"
RUN_STOP_FOLLOWING = "run.stop_following"  # a run whose connection left the catalog: ended here as unknown
RUN_CONSOLE = "run.console"
RUN_RETRY = "run.retry"
RUN_ACK = "run.ack"
RUN_LOG = "run.log"  # the failure's thread: opens the Full log modal
RUN_RESUME = "run.resume"  # the failure's thread: resume from the failed step, where the provider can
RUN_MUTE = "run.mute"  # static_select; option value "<run_id>|<seconds>"
# a grouped alert has one Retry / Acknowledge per failure: "run.retry:<n>"; listeners match the patterns
RUN_RETRY_PATTERN = re.compile(r"^run\.retry(?::\d+)?$")
RUN_ACK_PATTERN = re.compile(r"^run\.ack(?::\d+)?$")

# catalog list: value = pipeline name. Each button's action_id is "list.run:<index>" because a message may
# not repeat an action_id (the fake Slack enforces it, and a click must name one element); register the
# listener with LIST_RUN_PATTERN.
LIST_RUN = "list.run"
LIST_RUN_PATTERN = re.compile(r"^list\.run(?::\d+)?$")

# the Home tab's Unsubscribe: value = str(subscription id), re-checked at click; "sub.remove:<n>" per row
SUB_REMOVE = "sub.remove"
SUB_REMOVE_PATTERN = re.compile(r"^sub\.remove(?::\d+)?$")

# the Home tab's Refresh (value unused: it redraws the clicker's own tab) and Unmute (value = pipeline name,
# re-checked at click as `/pipeline unmute` is); "home.unmute:<n>" per row. The Home tab's Run is the list's
# (LIST_RUN) and its Acknowledge the alert's (RUN_ACK), with the same listeners and checks.
HOME_REFRESH = "home.refresh"
HOME_UNMUTE = "home.unmute"
HOME_UNMUTE_PATTERN = re.compile(r"^home\.unmute(?::\d+)?$")

# confirmation of a destructive operation: value = {"op": ..., "target": ..., "run": id | null}
OP_CONFIRM = "op.confirm"
OP_DISMISS = "op.dismiss"

# "already muted until …: mute for 1 hour instead": value = {"pipeline": ..., "seconds": n, "run": id | null}
MUTE_SET = "mute.set"
MUTE_SET_PATTERN = re.compile(r"^mute\.set(?::\d+)?$")  # two in one message: "mute.set", "mute.set:1"
MUTE_MAX_SECONDS = 30 * 86400  # what `/pipeline mute` accepts

# the run modal
RUN_MODAL = "run_modal"  # callback_id
PIPELINE_BLOCK = "pipeline"
PIPELINE_SELECT = "pipeline.select"
PARAM_BLOCK_PREFIX = "param:"
PARAM_ACTION = "value"

#: (label, seconds) of the Mute menu, in the order shown
MUTE_CHOICES: tuple[tuple[str, int], ...] = (
    ("1 hour", 3600),
    ("4 hours", 4 * 3600),
    ("1 day", 86400),
    ("1 week", 7 * 86400),
)
_MUTE_SECONDS = frozenset(seconds for _, seconds in MUTE_CHOICES)


def list_run_action_id(index: int) -> str:
    """The action_id of the Run button of the ``index``-th pipeline of a list."""
    return f"{LIST_RUN}:{index}"


def home_unmute_action_id(index: int) -> str:
    return f"{HOME_UNMUTE}:{index}"


def param_block_id(name: str) -> str:
    """The block_id of a parameter's input in the run modal."""
    return f"{PARAM_BLOCK_PREFIX}{name}"


def parse_run_value(value: str) -> int:
    """A card button's value back into a run id."""
    if not re.fullmatch(r"\d{1,18}", value):
        raise ValueError(f"{value[:40]!r} is not a run id")
    return int(value)


# the Full log modal's Earlier / Later: value "<run_id>|<page>", pages counted from the log's end
LOG_MODAL = "log.modal"
LOG_EARLIER = "log.earlier"
LOG_LATER = "log.later"


def log_page_value(run_id: int, page: int) -> str:
    return f"{run_id}|{page}"


def parse_log_page_value(value: str) -> tuple[int, int]:
    """A Full log page button's value back into (run id, page)."""
    found = re.fullmatch(r"(\d{1,18})\|(\d{1,6})", value)
    if found is None:
        raise ValueError(f"{value[:40]!r} is not a log page")
    return int(found.group(1)), int(found.group(2))


def parse_subscription_value(value: str) -> int:
    """An Unsubscribe button's value back into a subscription id."""
    if not re.fullmatch(r"\d{1,18}", value):
        raise ValueError(f"{value[:40]!r} is not a subscription id")
    return int(value)


def mute_value(run_id: int, seconds: int) -> str:
    return f"{run_id}|{seconds}"


def parse_mute_value(value: str) -> tuple[int, int]:
    """``"<run_id>|<seconds>"`` back into its parts; only the periods the menu offers are accepted."""
    run, sep, seconds = value.partition("|")
    if not sep or not seconds.isdigit() or int(seconds) not in _MUTE_SECONDS:
        raise ValueError(f"{value[:40]!r} is not a mute choice")
    return parse_run_value(run), int(seconds)


def op_value(op: str, target: str, run_id: int | None = None) -> str:
    """Compact JSON, the smallest form that fits the 2000-character button value."""
    return json.dumps({"op": op, "target": target, "run": run_id}, separators=(",", ":"), ensure_ascii=False)


def parse_op_value(value: str) -> tuple[str, str, int | None]:
    """An ``op.confirm`` value back into (op, target, run id)."""
    try:
        data = json.loads(value)
    except ValueError:
        raise ValueError("not an operation value") from None
    if not isinstance(data, dict):
        raise ValueError("not an operation value")
    op, target, run = data.get("op"), data.get("target"), data.get("run")
    if not isinstance(op, str) or not isinstance(target, str):
        raise ValueError("an operation value needs op and target")
    if run is not None and (isinstance(run, bool) or not isinstance(run, int)):
        raise ValueError("run must be a run id or null")
    return op, target, run


def mute_set_action_id(index: int) -> str:
    return f"{MUTE_SET}:{index}"


def mute_set_value(pipeline: str, seconds: int, run_id: int | None = None) -> str:
    """The explicit "mute for this long instead" of a pipeline already muted for longer (or shorter)."""
    return json.dumps({"pipeline": pipeline, "seconds": seconds, "run": run_id}, separators=(",", ":"))


def parse_mute_set_value(value: str) -> tuple[str, int, int | None]:
    """A ``mute.set`` value back into (pipeline, seconds, run id); a period ``/pipeline mute`` would refuse is
    refused here too."""
    try:
        data = json.loads(value)
    except ValueError:
        raise ValueError("not a mute value") from None
    if not isinstance(data, dict):
        raise ValueError("not a mute value")
    pipeline, seconds, run = data.get("pipeline"), data.get("seconds"), data.get("run")
    if not isinstance(pipeline, str) or not pipeline or len(pipeline) > 200:
        raise ValueError("a mute value needs a pipeline")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 60 <= seconds <= MUTE_MAX_SECONDS:
        raise ValueError("a mute lasts between a minute and 30 days")
    if run is not None and (isinstance(run, bool) or not isinstance(run, int)):
        raise ValueError("run must be a run id or null")
    return pipeline, seconds, run
