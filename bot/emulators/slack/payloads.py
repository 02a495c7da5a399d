"""The JSON shapes Slack sends to apps: interaction payloads, event envelopes, and Web API objects.

Written from Slack's documented payloads (and the fields Bolt reads from them) so the bot's listeners
see what production sends: slash-command form fields, ``block_actions`` with ``container``, ``channel``,
``message`` and ``actions``, ``view_submission`` with ``view.state.values`` in the per-element shapes,
``event_callback`` envelopes, and the user / channel / view objects of the Web API. Pure functions: the
server decides ids and times and passes them in.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator, Mapping
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.emulators._core import Json, JsonValue

__all__ = [
    "action",
    "block_actions",
    "button_action",
    "element_value",
    "event_callback",
    "fill_block_ids",
    "find_element",
    "interactive_elements",
    "slash_command",
    "state_values",
    "tz_fields",
    "user_ref",
    "view_submission",
]



def slash_command(
    *,
    token: str,
    team_id: str,
    team_domain: str,
    channel_id: str,
    channel_name: str,
    user_id: str,
    user_name: str,
    command: str,
    text: str,
    api_app_id: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, str]:
    """The form fields of a slash command request, in the order Slack sends them."""
    return {
        "token": token,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def user_ref(user_id: str, user_name: str, team_id: str) -> Json:
    """The ``user`` object of interaction payloads."""
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def block_actions(
    *,
    token: str,
    api_app_id: str,
    team: Json,
    user: Json,
    container: Json,
    trigger_id: str,
    actions: list[Json],
    state: Json | None = None,
    channel: Json | None = None,
    message: Json | None = None,
    view: Json | None = None,
    response_url: str | None = None,
) -> Json:
    """A ``block_actions`` payload. Slack leaves ``message`` out for ephemeral messages and sends ``view``
    instead of ``channel``/``message``/``response_url`` for clicks in a modal or the Home tab."""
    payload: Json = {
        "type": "block_actions",
        "user": user,
        "api_app_id": api_app_id,
        "token": token,
        "container": container,
        "trigger_id": trigger_id,
        "team": team,
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if channel is not None:
        payload["channel"] = channel
    if message is not None:
        payload["message"] = message
    if view is not None:
        payload["view"] = view
    payload["state"] = state if state is not None else {"values": {}}
    if response_url is not None:
        payload["response_url"] = response_url
    payload["actions"] = actions
    return payload


def view_submission(
    *, token: str, api_app_id: str, team: Json, user: Json, view: Json, trigger_id: str
) -> Json:
    """A ``view_submission`` payload; ``view`` already carries ``state.values``."""
    return {
        "type": "view_submission",
        "team": team,
        "user": user,
        "api_app_id": api_app_id,
        "token": token,
        "trigger_id": trigger_id,
        "view": view,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def event_callback(
    event: Json, *, token: str, team_id: str, api_app_id: str, bot_user_id: str, event_id: str, event_time: int
) -> Json:
    """The Events API envelope around one event."""
    return {
        "token": token,
        "team_id": team_id,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [
            {"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id, "is_bot": True,
             "is_enterprise_install": False}
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }


# -- blocks ------------------------------------------------------------------------------------


def fill_block_ids(blocks: list[JsonValue]) -> list[JsonValue]:
    """A copy of ``blocks`` where every block has a ``block_id``, as Slack stores them: interaction
    payloads always carry one, and listeners may rely on it."""
    filled = copy.deepcopy(blocks)
    for index, block in enumerate(filled):
        if isinstance(block, dict) and not block.get("block_id"):
            digest = hashlib.sha256(f"{index}:{block!r}".encode()).hexdigest()
            block["block_id"] = digest[:5]
    return filled


def interactive_elements(blocks: list[JsonValue]) -> Iterator[tuple[str, Json]]:
    """Every interactive element with its block's ``block_id``, in reading order."""
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        block_id = str(block.get("block_id", ""))
        candidates: list[JsonValue] = []
        if block.get("type") == "section":
            candidates.append(block.get("accessory"))
        elif block.get("type") in ("actions", "context_actions"):
            candidates.extend(block.get("elements") or [])
        elif block.get("type") == "input":
            candidates.append(block.get("element"))
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id"):
                yield block_id, element


def find_element(blocks: list[JsonValue], action_id: str, block_id: str | None = None) -> tuple[str, Json]:
    """The (block_id, element) with ``action_id``; ``LookupError`` naming what exists when absent."""
    found = [(b, e) for b, e in interactive_elements(blocks) if e["action_id"] == action_id]
    if block_id is not None:
        found = [(b, e) for b, e in found if b == block_id]
    if not found:
        known = sorted({e["action_id"] for _, e in interactive_elements(blocks)})
        where = f" in block {block_id!r}" if block_id is not None else ""
        raise LookupError(f"no element with action_id {action_id!r}{where}; action_ids here: {known}")
    return found[0]


def _options(element: Mapping[str, JsonValue]) -> list[Json]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _option(element: Mapping[str, JsonValue], value: JsonValue) -> Json:
    for option in _options(element):
        if option.get("value") == value:
            return dict(option)
    if element.get("type") in ("external_select", "multi_external_select"):
        return {"text": {"type": "plain_text", "text": str(value)}, "value": str(value)}
    known = [o.get("value") for o in _options(element)]
    raise LookupError(f"{element.get('action_id')!r} has no option with value {value!r}; options: {known}")


def element_value(element: Mapping[str, JsonValue], value: JsonValue) -> Json:
    """The value part Slack sends for an element (``type`` plus ``value`` / ``selected_*``), used both in
    ``actions[]`` of ``block_actions`` and in ``view.state.values``. A dict ``value`` that already has a
    ``type`` is taken as the exact shape (for odd cases)."""
    if isinstance(value, Mapping) and "type" in value:
        return dict(value)
    kind = str(element.get("type"))
    shape: Json = {"type": kind}
    many = value if isinstance(value, list) else ([] if value is None else [value])
    if kind in ("static_select", "external_select", "radio_buttons", "overflow"):
        shape["selected_option"] = None if value is None else _option(element, value)
    elif kind in ("multi_static_select", "multi_external_select", "checkboxes"):
        shape["selected_options"] = [_option(element, v) for v in many]
    elif kind == "users_select":
        shape["selected_user"] = value
    elif kind == "multi_users_select":
        shape["selected_users"] = many
    elif kind == "conversations_select":
        shape["selected_conversation"] = value
    elif kind == "multi_conversations_select":
        shape["selected_conversations"] = many
    elif kind == "channels_select":
        shape["selected_channel"] = value
    elif kind == "multi_channels_select":
        shape["selected_channels"] = many
    elif kind == "datepicker":
        shape["selected_date"] = value
    elif kind == "timepicker":
        shape["selected_time"] = value
    elif kind == "datetimepicker":
        shape["selected_date_time"] = value
    else:  # plain_text_input, number_input, email/url inputs, button
        shape["value"] = value
    return shape


def button_action(element: Mapping[str, JsonValue], block_id: str, value: JsonValue, action_ts: str) -> Json:
    """``actions[0]`` for a click on a button; ``value`` overrides the button's own (tampering tests)."""
    action: Json = {
        "action_id": element["action_id"],
        "block_id": block_id,
        "text": element.get("text"),
        "value": element.get("value") if value is None else value,
        "type": "button",
        "action_ts": action_ts,
    }
    if action["value"] is None:
        del action["value"]
    if element.get("style"):
        action["style"] = element["style"]
    if element.get("url"):
        action["url"] = element["url"]
    return action


def action(element: Mapping[str, JsonValue], block_id: str, value: JsonValue, action_ts: str) -> Json:
    """``actions[0]`` for an interaction with any element (button click, option picked, date chosen…)."""
    if element.get("type") == "button":
        return button_action(element, block_id, value, action_ts)
    shape = element_value(element, value)
    return {"action_id": element["action_id"], "block_id": block_id, **shape, "action_ts": action_ts}


def state_values(
    blocks: list[JsonValue], values: Mapping[str, Mapping[str, JsonValue]], *, every_input: bool = True
) -> dict[str, dict[str, Json]]:
    """``view.state.values`` for ``{block_id: {action_id: value}}``. With ``every_input`` (a submission)
    every input of the view appears, empty when not given, as Slack sends it; a block or action id the
    view lacks is a test mistake: raised."""
    state: dict[str, dict[str, Json]] = {}
    elements = {(b, e["action_id"]): e for b, e in interactive_elements(blocks)}
    for block in blocks if every_input else []:
        if isinstance(block, Mapping) and block.get("type") == "input":
            element = block.get("element") or {}
            if element.get("action_id"):
                state.setdefault(str(block.get("block_id")), {})[element["action_id"]] = element_value(element, None)
    for block_id, by_action in values.items():
        for action_id, value in by_action.items():
            element = elements.get((block_id, action_id))
            if element is None:
                raise LookupError(
                    f"the view has no element {block_id!r}/{action_id!r}; it has {sorted(elements)}"
                )
            state.setdefault(block_id, {})[action_id] = element_value(element, value)
    return state


# -- Web API objects -----------------------------------------------------------------------------


def tz_fields(tz: str) -> Json:
    """``tz``, ``tz_label`` and ``tz_offset`` (seconds) of a users.info user, from the IANA zone."""
    try:
        now = datetime.now(ZoneInfo(tz))
    except (ZoneInfoNotFoundError, ValueError):
        return {"tz": tz, "tz_label": tz, "tz_offset": 0}
    offset = now.utcoffset()
    return {"tz": tz, "tz_label": now.tzname() or tz, "tz_offset": int(offset.total_seconds()) if offset else 0}
