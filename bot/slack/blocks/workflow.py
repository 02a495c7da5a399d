"""The workflow card: one message showing every step's state, with links to each step's own card,
Approve / Reject on a waiting approval, and Retry (resume from the failed steps) when it stopped. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.catalog.workflows import STEP_NAME_MAX, Workflow
from bot.models import Json
from bot.service.views import RunView, StepState, WorkflowState, WorkflowView
from bot.slack.blocks.card import button, confirm_dialog, context, section
from bot.slack.text import escape, human_duration, mention, named, slack_date, truncate

__all__ = ["WF_APPROVE", "WF_REJECT", "WF_RETRY", "parse_step_value", "step_value", "workflow_card"]

Block = Json
WF_APPROVE = "wf.approve"
WF_REJECT = "wf.reject"
WF_RETRY = "wf.retry"

_EMOJI = {
    StepState.PENDING: "⚪",
    StepState.STARTING: "▶️",
    StepState.RUNNING: "▶️",
    StepState.SUCCEEDED: "✅",
    StepState.FAILED: "❌",
    StepState.CANCELED: "⏹️",
    StepState.WAITING: "⏸️",
    StepState.REJECTED: "🚫",
    StepState.TIMED_OUT: "⌛",
}
SKIPPED = "⏭️"  # a step still pending once its workflow ended: shown as skipped, never stored so
_HEAD = {WorkflowState.RUNNING: "🔀", WorkflowState.SUCCEEDED: "✅", WorkflowState.FAILED: "❌"}


#: the longest step name a button's value carries (Slack's 2000 characters, less the run's id): the catalog
#: refuses a longer one; an approval whose value was refused could not be decided from Slack (it timed out)
STEP_VALUE_MAX = STEP_NAME_MAX


def step_value(workflow_run_id: int, step: str) -> str:
    return f"{workflow_run_id}|{step}"


def parse_step_value(value: str) -> tuple[int, str]:
    run, sep, step = value.partition("|")
    if not sep or not run.isdigit() or not step or len(step) > STEP_VALUE_MAX:
        raise ValueError(f"{value[:40]!r} is not a workflow step")
    return int(run), step


def _who(principals: tuple[str, ...]) -> str:
    shown = []
    for p in principals:
        try:
            shown.append(mention(p))
        except ValueError:
            shown.append(f"<#{p}>" if p[:1] in ("C", "G") else "anyone")
    return ", ".join(shown)


def _step_line(name: str, record: WorkflowView, workflow: Workflow, runs: Mapping[int, RunView]) -> str:
    step = workflow.steps[name]
    state = record.steps[name].state
    skipped = state is StepState.PENDING and record.state is not WorkflowState.RUNNING
    emoji, word = (SKIPPED, "skipped") if skipped else (_EMOJI[state], state.value.replace("_", " "))
    what = f"pipeline {named(step.pipeline)}" if step.pipeline else "approval"
    line = f"{emoji} {named(name)} · {what} · {word}"
    run_id = record.steps[name].run_id
    run = runs.get(run_id) if run_id is not None else None
    if run is not None:
        line += f" · run #{run.id}"
        if run.attempt > 1:
            line += f" (attempt {run.attempt})"
        if run.final and run.started_at and run.ended_at:
            line += f" · {human_duration(run.ended_at - run.started_at)}"
    decided = record.steps[name].decided_by
    if decided:
        line += f" · by <@{decided}>"
    if state is StepState.WAITING and step.approval is not None:
        due = record.steps[name].due_at
        line += f"\n> waiting for {_who(step.approval.approvers)}" + (f" until {slack_date(due)}" if due else "")
        if step.approval.question:
            line += f"\n> {truncate(escape(step.approval.question), 300, '…')}"
    return line


def workflow_card(
    record: WorkflowView, workflow: Workflow, runs: Mapping[int, RunView], *, now: datetime
) -> tuple[str, list[Block]]:
    name = escape(workflow.name)
    title = truncate(workflow.name, 100, "…")
    head = f"{_HEAD.get(record.state, '🔀')} {title} {record.state} (workflow run #{record.id})"
    blocks: list[Block] = [{"type": "header", "text": {"type": "plain_text", "text": truncate(head, 150, "…")}}]
    lines = [_step_line(step, record, workflow, runs) for step in workflow.steps]
    chunk: list[str] = []
    for line in lines:
        if len("\n".join([*chunk, line])) > 2900:
            blocks.append(section("\n".join(chunk)))
            chunk = []
        chunk.append(line)
    if chunk:
        blocks.append(section("\n".join(chunk)))
    facts = [
        f"Started {slack_date(record.created_at)}",
        f"by <@{record.started_by}>" if record.started_by else "by its schedule",
    ]
    if record.parameters:
        facts.append("Parameters: " + escape(", ".join(f"{k}={v}" for k, v in record.parameters.items())))
    blocks.append(context(*[truncate(f, 1000, "…") for f in facts]))
    elements: list[Block] = []
    for step_name, step in workflow.steps.items():
        if step.approval is not None and record.steps[step_name].state is StepState.WAITING and len(elements) < 20:
            value = step_value(record.id, step_name)
            label = truncate(step_name, 40, "…")
            elements.append(button(f"Approve {label}", f"{WF_APPROVE}:{len(elements)}", value, style="primary"))
            elements.append(
                button(
                    f"Reject {label}",
                    f"{WF_REJECT}:{len(elements)}",
                    value,
                    style="danger",
                    confirm=confirm_dialog("Reject?", f"Reject {escape(step_name)} of {name}?", "Reject"),
                )
            )
    if record.state is WorkflowState.FAILED:
        elements.append(button("Retry from the failed steps", WF_RETRY, str(record.id), style="primary"))
    if elements:
        blocks.append({"type": "actions", "elements": elements[:25]})
    text = f"Workflow {name} {record.state} (run #{record.id})"
    return text, blocks
