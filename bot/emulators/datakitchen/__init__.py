"""DataKitchen Automation API (``/v2``), as the vendor documents and DataKitchen's own clients show it.

- ``POST /v2/login`` takes form fields (or JSON) ``username``/``password`` and answers the raw JWT
  as text (optionally in quotes); a refused login answers 401. Tokens are real HS256 JWTs with an
  ``exp`` claim on the emulator's clock. ``GET /v2/validatetoken`` answers ``{"token": <fresh>}``
  for a valid token, 401 otherwise. Every other route wants ``Authorization: Bearer <jwt>`` and
  answers 401 ``{"message": {"error": "token expired"}}`` for an expired one; with
  ``refreshed_token_header`` a token within 180 s of expiry gets a ``refreshed_token`` header.
- ``PUT /v2/order/create/{kitchen}/{recipe}/{variation}`` (``{"parameters": {...}, "schedule"}``)
  creates an order and plans one order run ("serving") for it; the answer carries the order id as
  ``order_id`` (DKCloudCommand 1.5, DKUtils) and ``serving_hid`` (DKCloudCommand 1.0) but no order-run
  id (``create_keys`` picks the keys). Unknown kitchens, recipes and variations answer 417
  ``{"message": {"error": ...}}``.
- Order runs: ``GET /v2/order/servings/{kitchen}/{order_id}``, ``GET /v2/order/status/{kitchen}``
  (``start``, ``count``, ``scount``, ``r`` = recipe as query parameters, as DKCloudCommand sends them,
  or a JSON body with ``recipe``, ``variation``, ``servingsCount``, as DKUtils does; orders carry
  ``order-status``), ``POST /v2/order/details/{kitchen}`` (by ``serving_hid``, ``serving_book_hid`` or
  ``order_id``; the requested run first; ``log.lines`` entries), ``GET
  /v2/order/export/logs/{kitchen}/{id}`` (the whole log: ``log``, base64 of a zip of its text),
  ``PUT /v2/serving/stop/{id}``,
  ``PUT /v2/order/resume/{id}`` (a failed run only, named in the body or the path: a new run of the
  same order, the old one becomes ``SERVING_RERAN``), ``PUT /v2/order/pause/{order_id}`` (an
  ``ACTIVE_ORDER`` only) and ``/unpause/`` (a ``PAUSED_ORDER`` only).
- What DKUtils reads before creating an order: ``GET /v2/kitchen/list``,
  ``/v2/kitchen/recipenames/{kitchen}``, ``/v2/recipe/file/{kitchen}/{recipe}/variations.json``.

``strict``: only what a DataKitchen source shows is accepted and served (``SOURCED_REQUESTS``,
``SOURCED_FIELDS``; docs/PROVIDERS.md, "DataKitchen: provenance").

An order run is an ``EmuRun`` of job ``"<kitchen>/<recipe>/<variation>"`` whose ``run_id`` is the
order run's ``hid``. Times are epoch milliseconds, as in ``timings{start-time, end-time, duration}``.
"""

from bot.emulators.datakitchen.server import DataKitchenEmulator
from bot.emulators.datakitchen.shapes import SOURCED_FIELDS, SOURCED_REQUESTS

__all__ = ["SOURCED_FIELDS", "SOURCED_REQUESTS", "DataKitchenEmulator"]
