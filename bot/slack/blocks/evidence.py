"""A failure's evidence in its thread (the provider's log's last relevant lines, what changed since the last
success, Full log and Resume buttons) and the Full log modal, one page at a time.

Log lines are the provider's words: escaped, a code fence in them neutralised, each cut to ``LINE_LIMIT``, and the
lines packed into sections under Slack's 3,000 characters. A page of the modal is ``bot.service.evidence.LOG_PAGE``
lines; the log is never sent whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.models import Json
from bot.service.evidence import Comparison, Evidence, LogPage
from bot.slack.blocks import ids
from bot.slack.blocks.card import SECTION_LIMIT, Block, button, context, section
from bot.slack.text import code, escape, human_duration, plain_text, slack_date, truncate

__all__ = ["LINE_LIMIT", "evidence_note", "log_modal", "log_modal_saying", "log_sections"]

LINE_LIMIT = 300
_FENCE = "```"
_MODAL_SECTIONS = 40  # of a modal's 100 blocks; a page of 50 lines of 300 characters needs at most 6


def _line(text: str) -> str:
    # tabs as spaces to the next of every 4th column (a code block's tab width is the reader's browser's); line
    # breaks inside a line would start lines of their own
    flat = text.replace("\r", " ").replace("\n", " ").expandtabs(4)
    return truncate(escape(flat), LINE_LIMIT, "…").replace("`", "ˋ")


def log_sections(lines: Sequence[str], *, limit: int = 5) -> list[Block]:
    """``lines`` as code blocks, as many lines per section as fit its 3,000 characters, ``limit`` sections."""
    room = SECTION_LIMIT - 2 * len(_FENCE) - 2
    blocks: list[Block] = []
    chunk: list[str] = []
    for text in (_line(line) for line in lines):
        if chunk and sum(len(c) + 1 for c in chunk) + len(text) > room:
            blocks.append(section(_FENCE + "\n".join(chunk) + _FENCE))
            chunk = []
        chunk.append(text)
    if chunk:
        blocks.append(section(_FENCE + "\n".join(chunk) + _FENCE))
    return blocks[-limit:]


def evidence_note(evidence: Evidence) -> tuple[str, list[Block]]:
    """The thread reply: the log's last relevant lines with a Full log button, or why there are none; then what
    changed since the last success; Resume from the failed step where the provider can."""
    name = truncate(escape(evidence.display_name), 100, "…")
    blocks: list[Block] = []
    if evidence.has_log:
        shown = len(evidence.lines)
        head = f"📋 *From {name}'s log* (the last relevant {shown} of {evidence.total_lines} lines)"
        blocks.append(section(head, accessory=button("Full log", ids.RUN_LOG, str(evidence.run_id))))
        blocks += log_sections(evidence.lines, limit=3)
        blocks.append(context(f"From {escape(evidence.source)}; secrets redacted."))
    else:
        blocks.append(context(f"📋 {truncate(escape(evidence.missing), 1500, '…')}"))
    if evidence.comparison is not None:
        blocks.append(section(comparison_text(evidence.comparison)))
    if evidence.can_resume:
        blocks.append({"type": "actions", "elements": [
            button("Resume from the failed step", ids.RUN_RESUME, str(evidence.run_id), style="primary")
        ]})
    text = f"Details of run #{evidence.run_id} from {name}"
    return text, blocks


def comparison_text(comparison: Comparison) -> str:
    ended = f", {slack_date(comparison.success_ended)}" if comparison.success_ended else ""
    lines = [f"*Since the last success* (run #{comparison.success_id}{ended})"]
    now, then = comparison.duration_now, comparison.duration_then
    if now is not None and then is not None:
        lines.append(f"• Duration: {human_duration(now)} now, {human_duration(then)} then")
    for param, was, is_ in comparison.parameters[:10]:
        lines.append(f"• Parameter {code(param)}: {_value(was)} then, {_value(is_)} now")
    if len(comparison.parameters) > 10:
        lines.append(f"• and {len(comparison.parameters) - 10} more parameters differ")
    if comparison.steps:
        steps = ", ".join(code(s) for s in comparison.steps[:10])
        lines.append(f"• Failed now, passed then: {steps}")
    if not comparison.steps_known:
        lines.append(f"• The steps of run #{comparison.success_id} are not known: no step to compare")
    if len(lines) == 1:
        lines.append("• Same parameters; no step that passed then failed now.")
    return "\n".join(lines)


def _value(value: str | None) -> str:
    return "unset" if value is None else code(truncate(value, 100, "…"))


def log_modal_saying(run_id: int, said: str) -> Json:
    """The Full log modal while the log is read (opened at once: a click's trigger_id lasts 3 s), or saying why it
    could not be (``said`` is mrkdwn the caller escaped)."""
    return _modal(run_id, [section(said)])


def log_modal(page: LogPage) -> Json:
    """The Full log modal at ``page``: its lines, where they are in the log, Earlier and Later."""
    last = page.first + len(page.lines) - 1
    where = f"Lines {page.first}–{last} of {page.total} (page {page.pages - page.page} of {page.pages})"
    blocks: list[Block] = [context(where)]
    blocks += log_sections(page.lines, limit=_MODAL_SECTIONS) or [section("_The log is empty._")]
    moves = []
    if page.page + 1 < page.pages:
        moves.append(button("◀ Earlier", ids.LOG_EARLIER, ids.log_page_value(page.run_id, page.page + 1)))
    if page.page > 0:
        moves.append(button("Later ▶", ids.LOG_LATER, ids.log_page_value(page.run_id, page.page - 1)))
    if moves:
        blocks.append({"type": "actions", "elements": moves})
    return _modal(page.run_id, blocks)


def _modal(run_id: int, blocks: list[Block]) -> Json:
    return {
        "type": "modal",
        "callback_id": ids.LOG_MODAL,
        "title": plain_text(f"Log of run #{run_id}", 24),
        "close": plain_text("Close", 24),
        "private_metadata": str(run_id),
        "blocks": blocks,
    }
