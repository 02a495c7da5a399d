"""What the running bot would refuse, found by the catalog's validation (``pipeline-bot check`` and start-up).

A pipeline watched on a connection that cannot list runs would be skipped by the watcher, its failures told
to nobody; a schedule whose parameters its pipeline or workflow does not accept would fail at every slot
with a log line only. Both are problems here, with the path to fix.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from bot.catalog.model import ParameterSpec, Pipeline, Schedule
from bot.catalog.workflows import Workflow
from bot.models import JsonValue
from bot.providers.base import Capability, ConnectionConfig
from bot.providers.registry import PROVIDERS, provider

__all__ = ["schedule_problems", "watchable"]


def watchable(
    pipelines: Mapping[str, Pipeline],
    written: Mapping[str, JsonValue],
    declared: Mapping[str, JsonValue],
    connections: Mapping[str, ConnectionConfig | None],
    problems: list[str],
    warnings: list[str],
    broken: Collection[str] = (),
) -> None:
    """Watching lists a pipeline's recent runs: on a connection that cannot (Rivery's legacy API, InVision) the
    running bot would skip it, and its failures would reach nobody. Asked for by the pipeline: a problem;
    inherited from ``defaults.watch``: a warning (the rest of the catalog is watched). A pipeline in ``broken``
    (its own problem listed) that says ``watch: true`` is checked too, from what it says: two mistakes, two
    problems in one check."""
    for pipeline in pipelines.values():
        if not pipeline.watch:
            continue
        why = _cannot_list(pipeline.provider, pipeline.connection, declared, connections)
        if why is None:
            continue
        entry = written.get(pipeline.name)
        if not (isinstance(entry, dict) and "watch" in entry):
            warnings.append(
                f"pipelines.{pipeline.name}: not watched although defaults.watch is true: {why}; set watch: false "
                "on it"
            )
        else:
            problems.append(f"pipelines.{pipeline.name}.watch: cannot be watched: {why}; remove watch: true")
    for name in broken:
        entry = written.get(name)
        if not (isinstance(entry, dict) and entry.get("watch") is True and isinstance(entry.get("connection"), str)):
            continue
        conn_name = entry["connection"]
        conn = connections.get(conn_name)
        listed = declared.get(conn_name)
        kind = conn.provider if conn is not None else listed.get("provider") if isinstance(listed, dict) else None
        if kind not in PROVIDERS:
            continue  # its connection's own problem is listed
        if (why := _cannot_list(kind, conn_name, declared, connections)) is not None:
            problems.append(f"pipelines.{name}.watch: cannot be watched: {why}; remove watch: true")


def _cannot_list(
    kind: str, conn_name: str, declared: Mapping[str, JsonValue], connections: Mapping[str, ConnectionConfig | None]
) -> str | None:
    """Why the connection ``conn_name`` of provider ``kind`` cannot list runs; None when it can."""
    client = provider(kind).client
    conn = connections.get(conn_name)
    if conn is None:  # its own problem is listed; what it offers still follows from what it says
        entry = declared.get(conn_name)
        fields = {k: v for k, v in entry.items() if isinstance(k, str)} if isinstance(entry, dict) else {}
        conn = provider(kind).connection.model_construct(**fields)
    if Capability.LIST_RUNS in client.offered_by(conn):
        return None
    if kind == "rivery":
        return f"connection {conn_name} uses Rivery's legacy API, which cannot list runs (api: v1 can)"
    return f"{client.display_name}'s API cannot list runs"


def schedule_problems(pipelines: Mapping[str, Pipeline], workflows: Mapping[str, Workflow]) -> list[str]:
    """A schedule starts its pipeline or workflow with ``schedule.parameters``, checked at each slot as a
    person's ``run`` is: what would fail there (an unknown or invalid parameter, a required one missing, any
    parameter for a provider that takes none) is a problem now."""
    found: list[str] = []
    for kind, items in (("pipelines", pipelines), ("workflows", workflows)):
        for name, item in items.items():
            schedule: Schedule | None = item.schedule
            if schedule is None:
                continue
            path = f"{kind}.{name}.schedule.parameters"
            takes = isinstance(item, Workflow) or provider(item.provider).client.accepts_parameters
            if schedule.parameters and not takes and isinstance(item, Pipeline):
                display = provider(item.provider).client.display_name
                found.append(f"{path}: {display} runs take no parameters; remove them")
                continue
            found += _parameter_problems(path, name, schedule.parameters, item.parameters)
    return found


def _parameter_problems(
    path: str, name: str, given: Mapping[str, str], declared: Mapping[str, ParameterSpec]
) -> list[str]:
    found: list[str] = []
    for key in given:
        if key not in declared:
            takes = ", ".join(declared) or "none"
            found.append(f"{path}.{key}: {name} takes no parameter {key!r}; it takes: {takes}")
    for key, spec in declared.items():
        value = given.get(key, spec.default)
        if value is None or value == "":
            if spec.required:
                found.append(f"{path}: {key} is required by {name} and has no default: give it here, like {key}: …")
            continue
        if problem := spec.problem_with(str(value)):
            found.append(f"{path}.{key}: {value!r} {problem}")
    return found
