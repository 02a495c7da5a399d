"""What an alert's message tells beyond the alert row: its timeline, its failed run (started by, attempt, duration,
failed tasks), the console link and the permalinks of the cards it names. Gathered here, on the domain's side, from
the store (permalinks are fetched by delivery once a message is posted and stored with it); rendered by
``bot.slack.blocks.alerts``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from bot.service.views import AlertStory, EventKind, run_view, timeline_entry
from bot.store import keys
from bot.store.alert_events import AlertEvent
from bot.store.alerting import Alert
from bot.store.records import RunRecord
from bot.store.store import Store

__all__ = ["AlertStories", "ConsoleUrl"]

ConsoleUrl = Callable[[RunRecord], str | None]


class AlertStories:
    def __init__(self, store: Store, console_url: ConsoleUrl | None = None) -> None:
        self.store = store
        self.console_url = console_url or (lambda _run: None)

    async def gather(self, alerts: Sequence[Alert], *, runs_too: bool = True) -> dict[int, AlertStory]:
        """Each alert's story, by id. ``runs_too`` False: the timelines only (a grouped message shows each alert's
        state, not its run's facts; a storm rewrites such messages often)."""
        if not alerts:
            return {}
        events = await self.store.alert_events.of_alerts([a.id for a in alerts])
        if not runs_too:
            return {a.id: AlertStory(timeline=tuple(map(timeline_entry, events.get(a.id, [])))) for a in alerts}
        named = {e.run_id for each in events.values() for e in each if e.kind is EventKind.RETRIED and e.run_id}
        failed = {a.last_run_id for a in alerts if a.last_run_id is not None}
        links = await self.store.alert_events.permalinks([keys.run_card(i) for i in sorted(named | failed)])
        runs = await self.store.runs.many(failed | named)  # one query however many alerts (a storm's flush)
        stories: dict[int, AlertStory] = {}
        for alert in alerts:
            run = runs.get(alert.last_run_id) if alert.last_run_id is not None else None
            told = events.get(alert.id, [])
            timeline = tuple(timeline_entry(e, _retry_link(e, links), _retry(e, runs)) for e in told)
            stories[alert.id] = AlertStory(
                timeline=timeline,
                run=run_view(run) if run is not None else None,
                console_url=self.console_url(run) if run is not None else None,
                card_link=links.get(keys.run_card(run.id)) if run is not None else None,
            )
        return stories


def _retry(event: AlertEvent, runs: Mapping[int, RunRecord]) -> RunRecord | None:
    """The retry a retry's event names, its end told on the line."""
    return runs.get(event.run_id) if event.kind is EventKind.RETRIED and event.run_id else None


def _retry_link(event: AlertEvent, links: dict[str, str]) -> str | None:
    """A retry's line links to the retry's card."""
    return links.get(keys.run_card(event.run_id)) if event.kind is EventKind.RETRIED and event.run_id else None
