"""What answered at the Slack API, read without trusting it: Slack's error code (an answer in plain text, HTML, a
JSON array, or a JSON ``error`` that is no code came from a gateway or proxy in between, and may echo the request),
and what to tell a person of it."""

from __future__ import annotations

import json
import re

from bot.ops.redact import PROCESS

__all__ = ["REASON_LIMIT", "slack_answer", "slack_error", "slack_field"]

#: the characters of a failed delivery's reason kept and logged (the store keeps 2,000): a gateway's page may be
#: megabytes
REASON_LIMIT = 2000


def slack_error(response: object) -> str:
    """Slack's ``error`` of an answer, or "": an answer that is no JSON object (a gateway's plain-text 503, a proxy's
    407) has none, where ``response.get`` raised ``AttributeError`` inside the handler of the ``SlackApiError``: a
    card's reason was "'str' object has no attribute 'get'", the 5xx wait never applied, and a step's completion
    raised out of the delivery tick ("deliveries failed" at ERROR).

    Only an error code as Slack writes them (``invalid_auth``, ``not_in_channel``: lower-case words
    joined by ``_``, short): a gateway's JSON ``error`` (``"denied for POST … Authorization: Bearer xoxb-…"``, an object
    echoing the request) was stored as the reason of a card or message in clear (the bot token in the database), and
    became a label of ``pipeline_bot_slack_calls_total`` (the token in /metrics, a new series per request id); the
    stored reason is then the answer's redacted text."""
    data = getattr(response, "data", None)
    error = data.get("error", "") if isinstance(data, dict) else ""
    return error if isinstance(error, str) and _SLACK_CODE.fullmatch(error) and PROCESS.redact(error) == error else ""


def slack_field(response: object, key: str) -> str:
    """A text field of Slack's answer (``needed`` of a ``missing_scope``: scopes such as ``users:read.email,
    chat:write``), or "" (none, no JSON object, or no such words: a gateway's own text, of megabytes or lines of its
    own, was quoted whole as the scope to add by ``check --online`` and the start-up)."""
    data = getattr(response, "data", None)
    value = data.get(key, "") if isinstance(data, dict) else ""
    if not isinstance(value, str) or not _SLACK_WORDS.fullmatch(value):
        return ""
    return value if PROCESS.redact(value) == value else ""


def slack_answer(response: object) -> str:
    """What answered at the Slack API, for a person: Slack's error code, or, when no Slack answered (a gateway's
    plain-text 503, a proxy's 407, an HTML page, a JSON array or an ``error`` that is no code), its status, content
    type and the start of its text, redacted, on one line. ``check --online`` printed "unexpected AttributeError:
    'str' object has no attribute 'get'" and the start-up "cannot start: AttributeError…"; an HTML 502 was
    "Slack answered None: check SLACK_BOT_TOKEN"."""
    if error := slack_error(response):
        return f"Slack answered {error}"
    status = getattr(response, "status_code", None)
    headers = getattr(response, "headers", None) or {}
    kind = str(headers.get("content-type") or "no content type")
    data = getattr(response, "data", None)
    text = data if isinstance(data, str) else "" if not data or isinstance(data, bytes) else json.dumps(data)
    said = f": {PROCESS.excerpt(text, 160)!r}" if text else ""
    return f"not Slack's answer: HTTP {status} ({PROCESS.excerpt(kind, 60)}){said}"


#: how Slack writes an ``error`` (``ratelimited``, ``restricted_action_read_only_channel``): lower-case words joined
#: by ``_``, no digit, ``-`` or ``.``: a gateway's look-alike carrying a request id (``upstream_timeout_req_4f9c2a10``,
#: ``req-6b1f…``) or a token in lower case was taken for Slack's code, a new /metrics series per failed call and
#: "Slack answered …"
_SLACK_CODE = re.compile(r"(?=.{1,64}$)[a-z]+(?:_[a-z]+)*")

#: how Slack writes scopes (``needed``, ``provided``): ``chat:write``, ``users:read.email``, comma-separated
_SLACK_WORDS = re.compile(r"[a-z0-9_.:,\-]{1,200}")
