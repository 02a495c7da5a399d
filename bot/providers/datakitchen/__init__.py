"""DataKitchen Automation API: create orders, follow their order runs ("servings"), stop and resume them.

A pipeline is a kitchen / recipe / variation. Triggering creates an *order* (``schedule: now``); the
platform then plans one *order run* for it, whose id (``hid``) the create answer does not carry. So a
run is watched as ``"<order_id>"`` (the newest order run of that order) right after the trigger, and
as ``"<order_id>/<serving_hid>"`` when one particular order run is meant (listing, resume history).

Authentication is a session JWT from ``POST v2/login`` (form fields). Tokens last about four hours:
the session renews them with ``GET v2/validatetoken`` when fewer than 180 s remain, adopts any
``refreshed_token`` response header, and logs in again once when the API answers 401.

The package: ``config`` (connection and job), ``session`` (the JWT login and its renewal), ``answers`` (status words,
orders and order runs), ``logs`` (an order run's nodes, log lines and failure message), ``client`` (the calls).
"""

from bot.providers.datakitchen.answers import is_final, map_status, node_state
from bot.providers.datakitchen.client import Client
from bot.providers.datakitchen.config import Connection, Job, ParameterType
from bot.providers.datakitchen.session import RENEW_BEFORE_S, jwt_expiry

__all__ = [
    "RENEW_BEFORE_S",
    "Client",
    "Connection",
    "Job",
    "ParameterType",
    "is_final",
    "jwt_expiry",
    "map_status",
    "node_state",
]
