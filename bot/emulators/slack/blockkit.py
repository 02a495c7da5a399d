"""Block Kit validation: the limits Slack enforces, checked before the fake Slack accepts blocks.

Slack rejects a message or a view that breaks a Block Kit rule (``invalid_blocks`` /
``invalid_arguments``) and the person sees nothing, so the fake must reject the same payloads or the
bot's tests pass against blocks that would fail in production. Two layers:

* explicit checks of the limits listed in SLACK.md (counts, lengths, text object types, unique
  ``block_id``, unique ``action_id``), each problem worded with a JSON pointer the way Slack words them;
* then ``slack_sdk.models`` parsing and validation of every block the explicit checks found clean,
  which adds the rules slack_sdk knows (select options, date formats, image sizes…).

Stricter than Slack in one place, on purpose: a message may not repeat an ``action_id`` even across
blocks (Slack only requires uniqueness inside a block). Bolt routes clicks by ``action_id``, so two
buttons sharing one cannot be told apart by the bot's listeners nor by ``FakeSlack.click``.

Pure functions; ``validate_*`` return a list of problems (empty when valid).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

from bot.emulators._core import JsonValue

__all__ = [
    "LIMITS",
    "BlockKitError",
    "check_message",
    "check_view",
    "message_warnings",
    "validate_blocks",
    "validate_message",
    "validate_view",
]

LIMITS: dict[str, int] = {
    "message_blocks": 50,
    "modal_blocks": 100,
    "home_blocks": 100,
    "section_text": 3000,
    "section_field": 2000,
    "section_fields": 10,
    "header_text": 150,
    "actions_elements": 25,
    "context_elements": 10,
    "button_text": 75,
    "button_value": 2000,
    "button_url": 3000,
    "action_id": 255,
    "block_id": 255,
    "view_title": 24,
    "view_submit": 24,
    "view_close": 24,
    "private_metadata": 3000,
    "callback_id": 255,
    "external_id": 255,
    "input_label": 2000,
    "input_hint": 2000,
    "option_text": 75,
    "option_value": 150,
    "options": 100,
    "placeholder": 150,
    "confirm_title": 100,
    "confirm_text": 300,
    "confirm_button": 30,
    "message_text": 40000,
}

BLOCK_TYPES = frozenset(
    {"section", "divider", "image", "actions", "context", "input", "file", "header", "markdown", "video",
     "rich_text", "table", "call"}
)
SELECTS = frozenset(
    {"static_select", "external_select", "users_select", "conversations_select", "channels_select",
     "multi_static_select", "multi_external_select", "multi_users_select", "multi_conversations_select",
     "multi_channels_select"}
)
PICKERS = frozenset({"datepicker", "timepicker", "datetimepicker", "checkboxes", "radio_buttons"})
TEXT_INPUTS = frozenset(
    {"plain_text_input", "email_text_input", "url_text_input", "number_input", "rich_text_input", "file_input"}
)
ACCESSORY_TYPES = frozenset({"button", "overflow", "image", "workflow_button"}) | SELECTS | PICKERS
ACTIONS_TYPES = frozenset({"button", "overflow", "workflow_button", "rich_text_input"}) | SELECTS | PICKERS
INPUT_TYPES = SELECTS | PICKERS | TEXT_INPUTS
TEXT_TYPES = frozenset({"plain_text", "mrkdwn"})


class BlockKitError(ValueError):
    """Blocks Slack would reject; ``problems`` lists every one, not only the first."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid Block Kit: " + "; ".join(self.problems))


class _Checker:
    """Walks one surface (a message or a view) collecting problems; remembers ids across blocks."""

    def __init__(self, *, unique_action_ids_per_surface: bool) -> None:
        self.problems: list[str] = []
        self.block_ids: set[str] = set()
        self.surface_action_ids: set[str] = set()
        self.block_action_ids: set[str] = set()
        self.per_surface = unique_action_ids_per_surface

    def add(self, pointer: str, problem: str) -> None:
        self.problems.append(f"{problem} [json-pointer:{pointer}]")

    # -- text objects ---------------------------------------------------------------------

    def text(
        self, obj: JsonValue, pointer: str, *, limit: int | None, plain_only: bool = False, required: bool = True
    ) -> None:
        if obj is None:
            if required:
                self.add(pointer, "must be provided")
            return
        if not isinstance(obj, Mapping):
            self.add(pointer, "must be a text object {type, text}")
            return
        kind = obj.get("type")
        if kind not in TEXT_TYPES:
            self.add(f"{pointer}/type", f"must be plain_text or mrkdwn, got {kind!r}")
        elif plain_only and kind != "plain_text":
            self.add(f"{pointer}/type", "must be plain_text here")
        value = obj.get("text")
        if not isinstance(value, str):
            self.add(f"{pointer}/text", "must be a string")
        elif not value:
            self.add(f"{pointer}/text", "must be more than 0 characters")
        elif limit is not None and len(value) > limit:
            self.add(f"{pointer}/text", f"must be at most {limit} characters, got {len(value)}")

    def length(self, value: JsonValue, pointer: str, limit: int) -> None:
        if value is None:
            return
        if not isinstance(value, str):
            self.add(pointer, "must be a string")
        elif len(value) > limit:
            self.add(pointer, f"must be at most {limit} characters, got {len(value)}")

    # -- elements -------------------------------------------------------------------------

    def element(self, element: JsonValue, pointer: str, allowed: frozenset[str]) -> None:
        if not isinstance(element, Mapping):
            self.add(pointer, "must be an object")
            return
        kind = element.get("type")
        if kind not in allowed:
            self.add(f"{pointer}/type", f"element type {kind!r} is not allowed here")
            return
        if kind == "image":
            if not element.get("image_url") and not element.get("slack_file"):
                self.add(pointer, "image needs image_url or slack_file")
            self.length(element.get("alt_text"), f"{pointer}/alt_text", 2000)
            return
        self.action_id(element.get("action_id"), f"{pointer}/action_id")
        if kind == "button":
            self.text(element.get("text"), f"{pointer}/text", limit=LIMITS["button_text"], plain_only=True)
            self.length(element.get("value"), f"{pointer}/value", LIMITS["button_value"])
            self.length(element.get("url"), f"{pointer}/url", LIMITS["button_url"])
            style = element.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.add(f"{pointer}/style", f"must be primary or danger, got {style!r}")
        if "placeholder" in element:
            self.text(element["placeholder"], f"{pointer}/placeholder", limit=LIMITS["placeholder"], plain_only=True)
        if "options" in element:
            self.options(element["options"], f"{pointer}/options")
        for index, group in enumerate(element.get("option_groups") or []):
            if isinstance(group, Mapping):
                self.options(group.get("options"), f"{pointer}/option_groups/{index}/options")
        if "confirm" in element:
            self.confirm(element["confirm"], f"{pointer}/confirm")

    def action_id(self, value: JsonValue, pointer: str) -> None:
        if value is None:
            return  # Slack generates one
        if not isinstance(value, str) or not value:
            self.add(pointer, "must be a non-empty string")
            return
        self.length(value, pointer, LIMITS["action_id"])
        if value in self.block_action_ids or (self.per_surface and value in self.surface_action_ids):
            self.add(pointer, f"duplicate action_id {value!r}")
        self.block_action_ids.add(value)
        self.surface_action_ids.add(value)

    def options(self, options: JsonValue, pointer: str) -> None:
        if not isinstance(options, list):
            self.add(pointer, "must be a list")
            return
        if len(options) > LIMITS["options"]:
            self.add(pointer, f"must have at most {LIMITS['options']} items, got {len(options)}")
        for index, option in enumerate(options):
            if not isinstance(option, Mapping):
                self.add(f"{pointer}/{index}", "must be an option object")
                continue
            self.text(option.get("text"), f"{pointer}/{index}/text", limit=LIMITS["option_text"])
            self.length(option.get("value"), f"{pointer}/{index}/value", LIMITS["option_value"])

    def confirm(self, dialog: JsonValue, pointer: str) -> None:
        if not isinstance(dialog, Mapping):
            self.add(pointer, "must be a confirmation dialog object")
            return
        self.text(dialog.get("title"), f"{pointer}/title", limit=LIMITS["confirm_title"], plain_only=True)
        self.text(dialog.get("text"), f"{pointer}/text", limit=LIMITS["confirm_text"])
        self.text(dialog.get("confirm"), f"{pointer}/confirm", limit=LIMITS["confirm_button"], plain_only=True)
        self.text(dialog.get("deny"), f"{pointer}/deny", limit=LIMITS["confirm_button"], plain_only=True)
        style = dialog.get("style")
        if style is not None and style not in ("primary", "danger"):
            self.add(f"{pointer}/style", f"must be primary or danger, got {style!r}")

    # -- blocks ---------------------------------------------------------------------------

    def block(self, block: JsonValue, pointer: str) -> None:
        if not isinstance(block, Mapping):
            self.add(pointer, "must be a block object")
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.add(f"{pointer}/type", f"unknown block type {kind!r}")
            return
        self.block_action_ids = set()
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id:
                self.add(f"{pointer}/block_id", "must be a non-empty string")
            else:
                self.length(block_id, f"{pointer}/block_id", LIMITS["block_id"])
                if block_id in self.block_ids:
                    self.add(f"{pointer}/block_id", f"duplicate block_id {block_id!r}")
                self.block_ids.add(block_id)
        before = len(self.problems)
        getattr(self, f"block_{kind}", self.block_other)(block, pointer)
        if len(self.problems) == before:
            self.sdk(block, pointer)

    def block_section(self, block: Mapping[str, JsonValue], pointer: str) -> None:
        fields = block.get("fields")
        if block.get("text") is None and not fields:
            self.add(pointer, "section needs text or fields")
        self.text(block.get("text"), f"{pointer}/text", limit=LIMITS["section_text"], required=False)
        if fields is not None:
            if not isinstance(fields, list):
                self.add(f"{pointer}/fields", "must be a list")
            else:
                if len(fields) > LIMITS["section_fields"]:
                    limit = LIMITS["section_fields"]
                    self.add(f"{pointer}/fields", f"must have at most {limit} items, got {len(fields)}")
                for index, field in enumerate(fields):
                    self.text(field, f"{pointer}/fields/{index}", limit=LIMITS["section_field"])
        if block.get("accessory") is not None:
            self.element(block["accessory"], f"{pointer}/accessory", ACCESSORY_TYPES)

    def block_header(self, block: Mapping[str, JsonValue], pointer: str) -> None:
        self.text(block.get("text"), f"{pointer}/text", limit=LIMITS["header_text"], plain_only=True)

    def block_actions(self, block: Mapping[str, JsonValue], pointer: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            self.add(f"{pointer}/elements", "must be a non-empty list")
            return
        if len(elements) > (limit := LIMITS["actions_elements"]):
            self.add(f"{pointer}/elements", f"must have at most {limit} items, got {len(elements)}")
        for index, element in enumerate(elements):
            self.element(element, f"{pointer}/elements/{index}", ACTIONS_TYPES)

    def block_context(self, block: Mapping[str, JsonValue], pointer: str) -> None:
        elements = block.get("elements")
        if not isinstance(elements, list) or not elements:
            self.add(f"{pointer}/elements", "must be a non-empty list")
            return
        if len(elements) > (limit := LIMITS["context_elements"]):
            self.add(f"{pointer}/elements", f"must have at most {limit} items, got {len(elements)}")
        for index, element in enumerate(elements):
            if isinstance(element, Mapping) and element.get("type") == "image":
                self.element(element, f"{pointer}/elements/{index}", frozenset({"image"}))
            else:
                self.text(element, f"{pointer}/elements/{index}", limit=None)

    def block_input(self, block: Mapping[str, JsonValue], pointer: str) -> None:
        self.text(block.get("label"), f"{pointer}/label", limit=LIMITS["input_label"], plain_only=True)
        self.text(block.get("hint"), f"{pointer}/hint", limit=LIMITS["input_hint"], plain_only=True, required=False)
        if block.get("element") is None:
            self.add(f"{pointer}/element", "must be provided")
        else:
            self.element(block["element"], f"{pointer}/element", INPUT_TYPES)

    def block_divider(self, block: Mapping[str, JsonValue], pointer: str) -> None:
        """Nothing to check beyond the block_id."""

    def block_other(self, block: Mapping[str, JsonValue], pointer: str) -> None:
        """Image, markdown, rich_text, video…: left to slack_sdk's validators."""

    def sdk(self, block: Mapping[str, JsonValue], pointer: str) -> None:
        """slack_sdk's own validators: they know rules we do not spell out (and log, never raise, on unknowns)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = Block.parse(dict(block))
                if parsed is not None:
                    parsed.to_dict()
        except Exception as exc:  # slack_sdk raises SlackObjectFormationError, TypeError, AttributeError…
            self.add(pointer, f"slack_sdk: {exc}")

    def blocks(self, blocks: JsonValue, pointer: str, limit: int) -> None:
        if not isinstance(blocks, list):
            self.add(pointer, "blocks must be a list")
            return
        if len(blocks) > limit:
            self.add(pointer, f"must have at most {limit} blocks, got {len(blocks)}")
        for index, block in enumerate(blocks):
            self.block(block, f"{pointer}/{index}")


def validate_blocks(blocks: JsonValue, *, limit: int, pointer: str = "/blocks", per_surface: bool = True) -> list[str]:
    """Problems with a list of blocks under a given block-count limit (empty when valid)."""
    checker = _Checker(unique_action_ids_per_surface=per_surface)
    checker.blocks(blocks, pointer, limit)
    return checker.problems


def validate_message(blocks: JsonValue) -> list[str]:
    """Problems Slack would report for a message's ``blocks`` (chat.postMessage, chat.update, response_url)."""
    return validate_blocks(blocks, limit=LIMITS["message_blocks"])


def validate_view(view: JsonValue) -> list[str]:
    """Problems Slack would report for a modal or Home tab view (views.open/update/push/publish)."""
    checker = _Checker(unique_action_ids_per_surface=False)  # a view's state is keyed by block_id first
    if not isinstance(view, Mapping):
        checker.add("/view", "must be a view object")
        return checker.problems
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.add("/view/type", f"must be modal or home, got {kind!r}")
        return checker.problems
    blocks = view.get("blocks")
    if kind == "modal":
        checker.text(view.get("title"), "/view/title", limit=LIMITS["view_title"], plain_only=True)
        checker.text(view.get("close"), "/view/close", limit=LIMITS["view_close"], plain_only=True, required=False)
        checker.text(view.get("submit"), "/view/submit", limit=LIMITS["view_submit"], plain_only=True,
                     required=_has_input(blocks))
    else:
        for key in ("submit", "close"):
            if view.get(key) is not None:
                checker.add(f"/view/{key}", "a home view cannot have submit or close")
    checker.length(view.get("private_metadata"), "/view/private_metadata", LIMITS["private_metadata"])
    checker.length(view.get("callback_id"), "/view/callback_id", LIMITS["callback_id"])
    checker.length(view.get("external_id"), "/view/external_id", LIMITS["external_id"])
    if blocks is None:
        checker.add("/view/blocks", "must be provided")
    else:
        checker.blocks(blocks, "/view/blocks", LIMITS[f"{kind}_blocks"])
    if not checker.problems:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # blocks were checked above; a stand-in keeps slack_sdk's block-count rule quiet
                View(**{**view, "blocks": [{"type": "divider"}]}).validate_json()
        except Exception as exc:
            checker.add("/view", f"slack_sdk: {exc}")
    return checker.problems


def _has_input(blocks: JsonValue) -> bool:
    return isinstance(blocks, list) and any(isinstance(b, Mapping) and b.get("type") == "input" for b in blocks)


def message_warnings(text: JsonValue, blocks: JsonValue) -> list[str]:
    """What Slack accepts but flags: no top-level ``text`` beside blocks (no notification or screen-reader
    fallback), and text past 40 000 characters (truncated)."""
    found: list[str] = []
    if blocks and not (isinstance(text, str) and text.strip()):
        found.append("missing top-level text: blocks were sent without a notification / screen-reader fallback")
    if isinstance(text, str) and len(text) > LIMITS["message_text"]:
        found.append(f"text is {len(text)} characters: Slack truncates it at {LIMITS['message_text']}")
    return found


def check_message(blocks: JsonValue) -> None:
    """``validate_message`` for callers who want an exception."""
    problems = validate_message(blocks)
    if problems:
        raise BlockKitError(problems)


def check_view(view: JsonValue) -> None:
    """``validate_view`` for callers who want an exception."""
    problems = validate_view(view)
    if problems:
        raise BlockKitError(problems)
