"""A local stand-in for Slack: Web API, response URLs, Block Kit validation and signed requests into the app.

``FakeSlack`` (``server.py``) is the server, put together from: ``state.py`` (the workspace and what was
recorded, ``records.py``), the Web API (``api.py`` with one module per family: ``chat.py``,
``conversations.py``, ``views.py``), ``responses.py`` (response URLs), ``faults.py``, ``driver.py`` (what a
person does, sent to the app) and ``page.py`` (the page over the state). ``blockkit.py``, ``signing.py`` and
``payloads.py`` are the pure parts, usable on their own (e.g. validating blocks in a unit test).
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
