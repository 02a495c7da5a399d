"""A local stand-in for Slack: Web API, response URLs, Block Kit validation and signed requests into the app.

``FakeSlack`` (``server.py``) is the server; ``blockkit.py``, ``signing.py`` and ``payloads.py`` are the
pure parts it is built from, usable on their own (e.g. validating blocks in a unit test).
"""

from __future__ import annotations

from bot.emulators.slack.blockkit import BlockKitError, check_message, check_view, validate_message, validate_view
from bot.emulators.slack.server import (
    ApiCall,
    AppResponse,
    Channel,
    Delivery,
    Ephemeral,
    FakeSlack,
    FakeView,
    Message,
    MessageVersion,
    ResponsePost,
    User,
    Usergroup,
)

__all__ = [
    "ApiCall",
    "AppResponse",
    "BlockKitError",
    "Channel",
    "Delivery",
    "Ephemeral",
    "FakeSlack",
    "FakeView",
    "Message",
    "MessageVersion",
    "ResponsePost",
    "User",
    "Usergroup",
    "check_message",
    "check_view",
    "validate_message",
    "validate_view",
]
