"""The run modal (``/pipeline run`` with no name, or Run on the list) and the reading of its submission.

Picking a pipeline dispatches a ``block_actions`` event (``dispatch_action``) so the listener can redraw the
modal with that pipeline's parameters; the submission's ``view.state.values`` come back through
``parameters_from_state``. ``private_metadata`` carries the channel to post the card in: it comes back from
the client, so the listener re-checks it like any input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from bot.catalog.model import ParameterSpec, Pipeline
from bot.models import Json, JsonValue
from bot.slack.blocks import ids
from bot.slack.blocks.card import Block, option, section
from bot.slack.text import escape, named, plain_text, truncate

__all__ = ["parameters_from_state", "pipeline_from_state", "run_modal", "submission_errors"]

MAX_OPTIONS = 100
MODAL_BLOCKS = 100
METADATA_LIMIT = 3000


def run_modal(
    pipelines: Sequence[Pipeline],
    *,
    selected: Pipeline | None,
    channel: str,
    errors: Mapping[str, str] | None = None,
    pipeline_error: str | None = None,
    display_names: Mapping[str, str] | None = None,
) -> Json:
    """The modal view. ``errors`` maps parameter names to what is wrong with them and ``pipeline_error`` says
    what is wrong with the choice itself; each shows as its input's hint, so a redraw keeps the person's place.
    ``display_names`` maps provider keys to names for the option groups ("rivery" → "Rivery")."""
    errors = errors or {}
    names = display_names or {}
    blocks: list[Block] = [_pipeline_select(pipelines, selected, pipeline_error, names)]
    if selected is not None:
        blocks += _selected_blocks(selected, errors, names)
    return {
        "type": "modal",
        "callback_id": ids.RUN_MODAL,
        "title": plain_text("Run a pipeline", 24),
        "submit": plain_text("Run", 24),
        "close": plain_text("Cancel", 24),
        "private_metadata": _metadata(channel, selected),
        "blocks": blocks[:MODAL_BLOCKS],
    }


def _metadata(channel: str, selected: Pipeline | None) -> str:
    data = {"channel": channel, "pipeline": selected.name if selected else None}
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    if len(text) > METADATA_LIMIT:
        raise ValueError(f"private_metadata of {len(text)} characters: Slack allows {METADATA_LIMIT}")
    return text


def _pipeline_option(pipeline: Pipeline) -> Block:
    """One option; built the same way for ``options`` and ``initial_option``, which Slack requires to match."""
    opt = option(escape(pipeline.name), pipeline.name)
    if pipeline.description.strip():
        opt["description"] = plain_text(escape(" ".join(pipeline.description.split())), 75)
    return opt


def _choosable(pipelines: Sequence[Pipeline], selected: Pipeline | None) -> list[Pipeline]:
    """At most 100 pipelines whose names fit an option value, the selected one always among them."""
    fitting = [p for p in pipelines if len(p.name) <= 150]
    chosen = fitting[:MAX_OPTIONS]
    if selected is not None and selected in fitting and selected not in chosen:
        chosen = [*chosen[: MAX_OPTIONS - 1], selected]
    return chosen


def _pipeline_select(
    pipelines: Sequence[Pipeline], selected: Pipeline | None, error: str | None, names: Mapping[str, str]
) -> Block:
    chosen = _choosable(pipelines, selected)
    element: Block = {
        "type": "static_select",
        "action_id": ids.PIPELINE_SELECT,
        "placeholder": plain_text("Choose a pipeline", 150),
    }
    providers = list(dict.fromkeys(p.provider for p in chosen))
    if len(providers) > 1:
        element["option_groups"] = [
            {
                "label": plain_text(escape(names.get(provider, provider)), 75),
                "options": [_pipeline_option(p) for p in chosen if p.provider == provider],
            }
            for provider in providers
        ]
    else:
        element["options"] = [_pipeline_option(p) for p in chosen] or [option("(no pipelines)", "-")]
    if selected is not None and selected in chosen:
        element["initial_option"] = _pipeline_option(selected)
    block: Block = {
        "type": "input",
        "block_id": ids.PIPELINE_BLOCK,
        "dispatch_action": True,
        "label": plain_text("Pipeline", 2000),
        "element": element,
    }
    hint = _select_hint(len(pipelines), len(chosen), error)
    if hint:
        block["hint"] = plain_text(hint, 2000)
    return block


def _select_hint(total: int, shown: int, error: str | None) -> str | None:
    if error:
        return "⚠️ " + escape(error)
    if shown < total:
        return f"Showing {shown} of {total}: for the others type /pipeline run followed by the name"
    return None


def _selected_blocks(pipeline: Pipeline, errors: Mapping[str, str], names: Mapping[str, str]) -> list[Block]:
    provider = escape(names.get(pipeline.provider, pipeline.provider))
    about = f"{named(truncate(pipeline.name, 200, '…'))} · {provider}"
    if pipeline.description.strip():
        about += "\n" + truncate(escape(pipeline.description.strip()), 2000)
    if not pipeline.parameters:
        about += "\n_No parameters: it runs with its defaults._"
    blocks = [section(about)]
    for name, spec in list(pipeline.parameters.items())[: MODAL_BLOCKS - 2]:
        blocks.append(_parameter_input(name, spec, errors.get(name)))
    return blocks


def _parameter_input(name: str, spec: ParameterSpec, error: str | None) -> Block:
    block: Block = {
        "type": "input",
        "block_id": ids.param_block_id(name),
        "optional": not spec.required,
        "label": plain_text(escape(name), 2000),
        "element": _parameter_element(spec),
    }
    hint = "⚠️ " + escape(error) if error else escape(spec.description.strip())
    if hint:
        block["hint"] = plain_text(hint, 2000)
    return block


def _parameter_element(spec: ParameterSpec) -> Block:
    """datepicker for dates, static_select for choices, a text input otherwise; defaults pre-filled."""
    if spec.type == "date":
        element: Block = {"type": "datepicker", "action_id": ids.PARAM_ACTION}
        if spec.default:
            element["initial_date"] = spec.default
        return element
    if spec.type == "choice" and spec.choices:
        options = [option(escape(c), c) for c in spec.choices if len(c) <= 150][:MAX_OPTIONS]
        element = {"type": "static_select", "action_id": ids.PARAM_ACTION, "options": options}
        if spec.default is not None and any(o["value"] == spec.default for o in options):
            element["initial_option"] = option(escape(spec.default), spec.default)
        return element
    element = {"type": "plain_text_input", "action_id": ids.PARAM_ACTION}
    if spec.default:
        element["initial_value"] = spec.default
    if spec.type == "int":
        element["placeholder"] = plain_text("a whole number", 150)
    return element


def pipeline_from_state(state_values: Mapping[str, Mapping[str, JsonValue]]) -> str | None:
    """The pipeline picked in the modal, from ``view.state.values`` (None when nothing is picked)."""
    return _element_value(state_values.get(ids.PIPELINE_BLOCK, {}).get(ids.PIPELINE_SELECT))


def parameters_from_state(state_values: Mapping[str, Mapping[str, JsonValue]], selected: Pipeline) -> dict[str, str]:
    """The declared parameters as typed in the modal; blank ones are left out so defaults apply.

    Only parameters the pipeline declares are read: extra blocks in a forged payload are ignored.
    """
    parameters: dict[str, str] = {}
    for name in selected.parameters:
        value = _element_value(state_values.get(ids.param_block_id(name), {}).get(ids.PARAM_ACTION))
        if value is not None and value.strip():
            parameters[name] = value.strip()
    return parameters


def _element_value(element: JsonValue) -> str | None:
    """The value of one element of ``view.state.values``, whatever its type."""
    if not isinstance(element, Mapping):
        return None
    kind = element.get("type")
    if kind == "datepicker":
        value = element.get("selected_date")
    elif kind == "static_select":
        picked = element.get("selected_option")
        value = picked.get("value") if isinstance(picked, Mapping) else None
    else:
        value = element.get("value")
    return value if isinstance(value, str) else None


def submission_errors(errors: Mapping[str, str], *, pipeline_error: str | None = None) -> Json:
    """The ``view_submission`` answer that shows errors next to the inputs, keyed by parameter name."""
    by_block = {ids.param_block_id(name): truncate(message, 2000, "…") for name, message in errors.items()}
    if pipeline_error:
        by_block[ids.PIPELINE_BLOCK] = truncate(pipeline_error, 2000, "…")
    return {"response_action": "errors", "errors": by_block}
