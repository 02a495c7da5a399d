"""``bot.service.rights``: which right lets a person act, in which order they are tried, and what a refusal says.
A user group's members come from a lookup counted here (Slack's ``usergroups.users.list`` in the bot)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.errors import NotAllowed
from bot.service.permissions import Actor, Authorizer
from bot.service.rights import ACKNOWLEDGE, CANCEL, MUTE, RETRY, Rights


@dataclass(frozen=True)
class Pipe:
    owners: tuple[str, ...] = ("U0BOB", "S0NIGHT", "C0OPS")
    allow_run: tuple[str, ...] = ("U0ALICE",)
    allow_change: tuple[str, ...] = ("U0ALICE",)


def rights(groups: dict[str, frozenset[str]], lookups: list[str] | None = None, cache_s: float = 60.0) -> Rights:
    async def members(group: str) -> frozenset[str]:
        if lookups is not None:
            lookups.append(group)
        return groups.get(group, frozenset())

    return Rights(Authorizer(["U0CAROL"], members, cache_s=cache_s))


async def test_the_strongest_right_held_is_the_one_used() -> None:
    r = rights({"S0NIGHT": frozenset({"U0ERIN", "U0ALICE"})})
    pipe = Pipe()
    assert await r.grant(Actor("U0CAROL"), pipe, RETRY, what="retry") == "admin"
    assert await r.grant(Actor("U0ALICE"), pipe, MUTE, what="mute") == "allow_change"  # also an owner: no cap
    assert await r.grant(Actor("U0BOB"), pipe, ACKNOWLEDGE, what="ack") == "owner"
    assert await r.grant(Actor("U0ERIN"), pipe, RETRY, what="retry") == "owner"
    assert await r.grant(Actor("U0ALICE"), pipe, RETRY, what="retry") == "allow_change"
    assert await r.grant(Actor("U0ZED"), Pipe(allow_run=("*",)), RETRY, what="retry") == "allow_run"
    assert await r.grant(Actor("U0DAVE"), pipe, CANCEL, what="cancel", started_by="U0DAVE") == "starter"


async def test_owners_may_not_cancel_others_runs_and_a_channel_named_as_owner_grants_nothing() -> None:
    r = rights({})
    with pytest.raises(NotAllowed) as refused:
        await r.grant(Actor("U0BOB"), Pipe(), CANCEL, what="cancel run #3", started_by="U0ALICE")
    assert str(refused.value).startswith(
        "You may not cancel run #3: that takes being `allow_change` (<@U0ALICE>), "
        "who started the run (<@U0ALICE>), or an admin (<@U0CAROL>)."
    )
    with pytest.raises(NotAllowed):  # in the channel named among the owners, but not an owner
        await r.grant(Actor("U0DAVE", channel_id="C0OPS"), Pipe(), ACKNOWLEDGE, what="ack")


async def test_a_refusal_names_each_right_and_who_holds_it_leaving_out_rights_nobody_holds() -> None:
    r = rights({})
    with pytest.raises(NotAllowed) as refused:
        await r.grant(Actor("U0DAVE"), Pipe(allow_change=()), RETRY, what="retry *orders*")
    assert str(refused.value).startswith(
        "You may not retry *orders*: that takes being an owner (<@U0BOB>, <!subteam^S0NIGHT>), "
        "`allow_run` (<@U0ALICE>), or an admin (<@U0CAROL>)."
    )
    with pytest.raises(NotAllowed) as refused:  # an ad-hoc run: no pipeline, only its starter and the admins
        await r.grant(Actor("U0DAVE"), None, CANCEL, what="cancel run #9", started_by="U0CAROL")
    assert "who started the run (<@U0CAROL>), or an admin" in str(refused.value)


async def test_a_groups_members_are_kept_briefly_then_asked_again() -> None:
    lookups: list[str] = []
    groups = {"S0NIGHT": frozenset({"U0ERIN"})}
    r = rights(groups, lookups, cache_s=0.0)
    assert await r.grant(Actor("U0ERIN"), Pipe(), ACKNOWLEDGE, what="ack") == "owner"
    groups["S0NIGHT"] = frozenset()
    with pytest.raises(NotAllowed):
        await r.grant(Actor("U0ERIN"), Pipe(), ACKNOWLEDGE, what="ack")
    assert lookups == ["S0NIGHT", "S0NIGHT"]

    kept: list[str] = []
    r = rights({"S0NIGHT": frozenset({"U0ERIN"})}, kept, cache_s=60.0)
    for _ in range(3):
        await r.grant(Actor("U0ERIN"), Pipe(), ACKNOWLEDGE, what="ack")
    assert kept == ["S0NIGHT"]


async def test_a_refusal_names_only_the_catalog_setting_that_would_give_the_right() -> None:
    auth = Authorizer(["U0CAROL"], lambda group: _no_members(group))
    with pytest.raises(NotAllowed) as change:
        await auth.check(Actor("U0ZED"), "change", Pipe(), what="watch *orders*")
    assert "change `allow_change` in the catalog" in str(change.value) and "allow_run" not in str(change.value)
    with pytest.raises(NotAllowed) as run:
        await auth.check(Actor("U0ZED"), "run", Pipe(), what="run *orders*")
    assert "change `allow_run` in the catalog" in str(run.value)


async def _no_members(group: str) -> frozenset[str]:
    return frozenset()
