"""The catalog as a message: one section per pipeline with a Run button, within Slack's 50 blocks.

Past the limit the rest is listed by name in one compact section, with a hint to narrow the list, so no
pipeline silently disappears from the answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.catalog.model import Pipeline
from bot.slack.blocks import ids
from bot.slack.blocks.card import Block, button, context, section
from bot.slack.text import code, escape, named, truncate

__all__ = ["catalog_list"]

MESSAGE_BLOCKS = 50
DESCRIPTION_LIMIT = 300


def catalog_list(
    pipelines: Sequence[Pipeline], display_names: Mapping[str, str], *, command: str = "/pipeline"
) -> tuple[str, list[Block]]:
    """The pipelines with a Run button each (it opens the run modal); ``display_names`` maps provider keys to
    their names ("rivery" → "Rivery"); ``command`` is the configured slash command, for the hint."""
    if not pipelines:
        text = "No pipelines in the catalog."
        return text, [section(text)]
    blocks: list[Block] = [section(f"*Pipelines* ({len(pipelines)})")]
    fits = len(pipelines) <= MESSAGE_BLOCKS - 1
    shown = pipelines if fits else pipelines[: MESSAGE_BLOCKS - 3]
    blocks += [_entry(index, p, display_names) for index, p in enumerate(shown)]
    if not fits:
        rest = pipelines[len(shown) :]
        blocks.append(section("*Also:* " + ", ".join(escape(p.name) for p in rest)))
        hint = escape(f"{len(rest)} more: narrow with {command} list <provider|tag>")
        blocks.append(context(hint))
    return f"{len(pipelines)} pipelines", blocks


def _entry(index: int, pipeline: Pipeline, display_names: Mapping[str, str]) -> Block:
    provider = display_names.get(pipeline.provider, pipeline.provider)
    lines = [f"{named(truncate(pipeline.name, 200, '…'))} · {truncate(escape(provider), 100, '…')}"]
    if pipeline.description.strip():
        lines.append(truncate(escape(" ".join(pipeline.description.split())), DESCRIPTION_LIMIT, "…"))
    if pipeline.tags:
        lines.append(" ".join(code(truncate(tag, 60, "…")) for tag in pipeline.tags[:20]))
    run = button("Run", ids.list_run_action_id(index), pipeline.name)
    return section("\n".join(lines), accessory=run)
