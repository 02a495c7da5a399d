"""The ``views.*`` Web API family of the fake Slack: modals (open, push, update) and Home tabs (publish),
with Slack's checks: a valid view, a fresh unused ``trigger_id``, the push limit, ``hash`` conflicts."""

from __future__ import annotations

from bot.emulators._core import Json
from bot.emulators.slack import payloads
from bot.emulators.slack.api import ApiError, Method, opt_str
from bot.emulators.slack.blockkit import validate_view
from bot.emulators.slack.records import Trigger
from bot.emulators.slack.state import SlackState

__all__ = ["MAX_PUSHED_VIEWS", "TRIGGER_TTL", "ViewsApi"]

TRIGGER_TTL = 3.0
MAX_PUSHED_VIEWS = 3


class ViewsApi:
    def __init__(self, state: SlackState) -> None:
        self.state = state

    def methods(self) -> dict[str, Method]:
        return {
            "views.open": self.open,
            "views.push": self.push,
            "views.update": self.update,
            "views.publish": self.publish,
        }

    def _view_param(self, params: Json) -> Json:
        view = params.get("view")
        if not isinstance(view, dict):
            raise ApiError("invalid_arguments", errors=["view must be a JSON object"])
        problems = validate_view(view)
        if problems:
            raise ApiError("invalid_arguments", errors=problems, response_metadata={"messages": problems})
        return {**view, "blocks": payloads.fill_block_ids(list(view.get("blocks") or []))}

    def _take_trigger(self, params: Json) -> Trigger:
        pointer = str(params.get("trigger_id") or params.get("interactivity_pointer") or "")
        trigger = self.state.triggers.get(pointer)
        if trigger is None:
            raise ApiError("invalid_trigger_id")
        if trigger.used:
            raise ApiError("exchanged_trigger_id")
        if self.state.clock() - trigger.issued_at > TRIGGER_TTL:
            raise ApiError("expired_trigger_id")
        return trigger

    def open(self, params: Json) -> Json:
        state = self.state
        trigger = self._take_trigger(params)
        sent = self._view_param(params)
        if sent.get("type") != "modal":
            raise ApiError("invalid_arguments", errors=["views.open takes a modal view"])
        trigger.used = True
        for old in state.open_modals(trigger.user):
            old.closed = True
        view = state.new_view(sent, trigger.user)
        state.stacks[trigger.user] = [view.id]
        return {"view": state.view_json(view)}

    def push(self, params: Json) -> Json:
        state = self.state
        trigger = self._take_trigger(params)
        sent = self._view_param(params)
        stack = state.open_modals(trigger.user)
        if not stack:
            raise ApiError("invalid_arguments", errors=["views.push needs an open modal"])
        if len(stack) >= MAX_PUSHED_VIEWS:
            raise ApiError("push_limit_reached")
        trigger.used = True
        view = state.new_view(sent, trigger.user, previous=stack[-1].id, root=stack[0].id)
        state.stacks[trigger.user].append(view.id)
        return {"view": state.view_json(view)}

    def update(self, params: Json) -> Json:
        state = self.state
        view_id, external_id = opt_str(params.get("view_id")), opt_str(params.get("external_id"))
        if view_id is None and external_id is None:
            raise ApiError("invalid_arguments", errors=["view_id or external_id is required"])
        view = state.views.get(view_id or "") if view_id else next(
            (v for v in state.views.values() if v.external_id == external_id), None)
        if view is None or view.closed:
            raise ApiError("not_found")
        if params.get("hash") and params["hash"] != view.hash:
            raise ApiError("hash_conflict")
        sent = self._view_param(params)
        state.replace_view(view, sent)
        return {"view": state.view_json(view)}

    def publish(self, params: Json) -> Json:
        state = self.state
        user = opt_str(params.get("user_id"))
        if user is None or user not in state.users:
            raise ApiError("user_not_found")
        sent = self._view_param(params)
        if sent.get("type") != "home":
            raise ApiError("invalid_arguments", errors=["views.publish takes a home view"])
        current = state.home(user)
        if current is not None and params.get("hash") and params["hash"] != current.hash:
            raise ApiError("hash_conflict")
        if current is None:
            current = state.new_view(sent, user)
            state.homes[user] = current.id
        else:
            state.replace_view(current, sent)
        return {"view": state.view_json(current)}
