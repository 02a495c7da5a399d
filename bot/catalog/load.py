"""pipelines.yml → ``Catalog``, reporting every problem with its place.

Validation does not stop at the first error: a person fixing a catalog wants the whole list, each
like ``pipelines.leads-ods.river_id: river_id is required``. Secrets are never written in the file; a
connection refers to an environment variable with ``${NAME}``, and a missing one is named.

A key given twice is an error (YAML would keep the last one silently: a merge mistake could redirect
credentials or widen ``allow_run``). A connection's ``base_url`` and ``token_url`` must be http(s); plain
http off this machine is a warning (credentials in clear text), a cloud metadata or link-local address an
error. ``console_url`` must be http(s) too (it becomes a button on Slack cards).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TypeVar, get_args

import yaml
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from bot.catalog.catalog import Catalog
from bot.catalog.model import NAME, NO_ESCALATION, Defaults, Pipeline, PipelineSpec, RouteRule
from bot.catalog.pagerduty import PagerDutyService, pagerduty_of
from bot.catalog.refusals import schedule_problems, watchable
from bot.catalog.workflows import StepSpec, Workflow, WorkflowSpec, validate_workflow
from bot.catalog.yaml_text import Loader, duplicate_keys, keys_as_written, line_number, marks, placed, shown
from bot.errors import ConfigError
from bot.models import Json, JsonValue
from bot.ops.plain import plain_error, safe_text
from bot.ops.redact import MIN_SECRET_LENGTH, Redactor
from bot.providers.base import ConnectionConfig, JobConfig
from bot.providers.registry import PROVIDERS, provider
from bot.urls import check_url, hide_userinfo, web_link_problem

__all__ = ["load_catalog", "parse_catalog", "referenced_values", "shown"]

M = TypeVar("M", bound=BaseModel)

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ALMOST_REF = re.compile(r"\$[{(]?([A-Za-z_][A-Za-z0-9_]*)[})]?")
_TOP = ("version", "defaults", "connections", "pipelines", "routes", "workflows")


def referenced_values(text: str, env: Mapping[str, str]) -> list[str]:
    """The values of the environment variables a catalog's text refers to with ``${NAME}``: a problem line about
    the catalog never shows them, whichever field (a swapped one, say) they were written in."""
    return [env[name] for name in set(_REF.findall(text)) if env.get(name)]


def load_catalog(path: Path | str, env: Mapping[str, str]) -> Catalog:
    """Read and validate a catalog file; ConfigError lists every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: no such file; set PIPELINES_FILE or copy pipelines.example.yml to {path}"], str(path)
        ) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror}"], str(path)) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [
                f"{path}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                "save it as UTF-8"
            ],
            str(path),
        ) from None
    try:
        loader = Loader(text)  # the reader refuses characters YAML does not allow (a NUL) already here
        try:
            node = loader.get_single_node()
            keys_as_written(node)
            duplicates = duplicate_keys(node, str(path))
            found_marks = marks(node)
            raw = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f"{path}:{mark.line + 1}: not valid YAML (column {mark.column + 1})"
        elif isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow: where it is
            before = text[: exc.position]
            column = len(before) - before.rfind("\n")
            where = f"{path}:{before.count(chr(10)) + 1}: not valid YAML (column {column})"
        else:
            where = f"{path}: not valid YAML"
        problem = str(getattr(exc, "problem", None) or getattr(exc, "reason", None) or type(exc).__name__)
        if "'\\t'" in problem or "tab character" in problem:  # PyYAML's words for a tab: say what to do
            problem = "a tab character; YAML indents with spaces only: replace the tab with spaces"
        raise ConfigError([f"{where}: {safe_text(problem[:200])}"], str(path)) from None
    except RecursionError:
        raise ConfigError([f"{path}: nested too deeply to be a catalog (brackets left open?)"], str(path)) from None
    try:
        catalog = parse_catalog(raw, env, source=str(path))
    except RecursionError:
        raise ConfigError([f"{path}: nested too deeply to be a catalog (brackets left open?)"], str(path)) from None
    except ConfigError as exc:
        secrets = Redactor(referenced_values(text, env))
        lines = [*duplicates, *(placed(line, found_marks, str(path)) for line in exc.problems)]
        lines.sort(key=lambda line: line_number(line, str(path)))  # in the order of the file
        raise ConfigError([safe_text(secrets.redact(line)) for line in lines], str(path)) from None
    if duplicates:
        raise ConfigError([safe_text(line) for line in duplicates], str(path))
    return catalog


def parse_catalog(raw: object, env: Mapping[str, str], source: str = "pipelines.yml") -> Catalog:
    problems: list[str] = []
    warnings: list[str] = []
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"the file must be a mapping with {', '.join(_TOP)}"], source)
    for key in raw:
        if key not in _TOP:
            problems.append(f"{key}: unknown key{_did_you_mean(str(key), _TOP)}; expected {', '.join(_TOP)}")
    if raw.get("version", 1) != 1:
        problems.append(f"version: {shown(raw.get('version'))} is not supported; this bot reads version 1")

    raw_defaults = raw.get("defaults") or {}
    paged = None  # the defaults' PagerDuty service: read apart (its key comes from the environment)
    if isinstance(raw_defaults, dict) and "pagerduty" in raw_defaults:
        raw_defaults = dict(raw_defaults)
        found = pagerduty_of(raw_defaults.pop("pagerduty"), "defaults.pagerduty", env, problems)
        paged = found if isinstance(found, PagerDutyService) else None
    given = _validate(Defaults, raw_defaults, "defaults", problems)
    defaults = given or Defaults()
    connections = _connections(_section(raw, "connections", problems), env, problems, warnings)
    broken: set[str] = set()  # pipelines with a problem of their own: still known by name to workflows
    pipelines = _pipelines(
        _section(raw, "pipelines", problems), raw, connections, defaults, problems, broken, env=env, paged=paged
    )
    before = len(problems)
    routes = _routes(raw.get("routes") or [], problems)
    # a broken defaults or route is said once: the channels it would have given are not missing too
    channels_known = given is not None and len(problems) == before
    _alerts_reach_people(pipelines, routes, defaults, problems, channels_known=channels_known)
    _escalations(pipelines, defaults, problems, warnings)
    written = _section(raw, "pipelines", []), _section(raw, "connections", [])
    watchable(pipelines, *written, connections, problems, warnings, broken=sorted(broken))
    workflows = _workflows(_section(raw, "workflows", problems), pipelines, broken, defaults, problems)
    problems.extend(schedule_problems(pipelines, workflows))
    for name, workflow in workflows.items():  # its card (and its steps' failures) go to its channel
        if channels_known and workflow.schedule is not None and not (workflow.channel or defaults.channel):
            problems.append(f"workflows.{name}: scheduled but no channel for its runs; set channel or defaults.channel")

    if problems:
        raise ConfigError(problems, source)
    return Catalog(
        connections={k: v for k, v in connections.items() if v is not None},
        pipelines=pipelines,
        defaults=defaults,
        routes=tuple(routes),
        source=source,
        workflows=workflows,
        warnings=tuple(warnings),
    )


# -- sections ---------------------------------------------------------------------------------


def _section(raw: Mapping[str, JsonValue], key: str, problems: list[str]) -> Json:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key}: must be a mapping of names to entries, not a {type(value).__name__}")
        return {}
    return value


def _connections(
    raw: Mapping[str, JsonValue], env: Mapping[str, str], problems: list[str], warnings: list[str]
) -> dict[str, ConnectionConfig | None]:
    found: dict[str, ConnectionConfig | None] = {}
    # a variable not set (or "NAME (empty)") → the fields using it: one problem each variable
    unset: dict[str, list[str]] = {}
    for name, entry in raw.items():
        path = f"connections.{name}"
        found[name] = None
        if not isinstance(entry, dict):
            problems.append(f"{path}: must be a mapping with provider, base_url and credentials")
            continue
        kind = entry.get("provider")
        if not isinstance(kind, str) or kind not in PROVIDERS:  # a list is no key: `in` would raise
            hint = _did_you_mean(kind, PROVIDERS) if isinstance(kind, str) else ""
            problems.append(
                f"{path}.provider: {shown(kind)} is not a provider{hint}; use one of {', '.join(PROVIDERS)}"
            )
            continue
        model = provider(kind).connection
        reported: set[str] = set()
        resolved = _resolve(entry, env, path, model, problems, reported, unset)
        found[name] = conn = _validate(model, resolved, path, problems, reported=reported)
        if conn is not None:
            # what the client would refuse when it is made (a key file that cannot be read): said now
            problems.extend(f"{path}.{line}" for line in provider(kind).client.connection_problems(conn))
            # every URL the credentials go to, not only base_url (Tailer POSTs its refresh token to token_url)
            for key in ("base_url", "token_url"):
                url = getattr(conn, key, None)
                if isinstance(url, str):
                    written = entry.get(key)
                    as_written = written if isinstance(written, str) and _REF.search(written) else None
                    _check_url(url, f"{path}.{key}", problems, warnings, as_written=as_written)
            # the console URL becomes a Slack button and a mrkdwn link: javascript: or the like is no link
            console = conn.console_url
            written = entry.get("console_url")
            quoted = shown(hide_userinfo(written)) if isinstance(written, str) and _REF.search(written) else None
            if isinstance(console, str) and (problem := web_link_problem(console, quoted=quoted)):
                problems.append(f"{path}.console_url: {problem}")
    for variable, uses in unset.items():
        also = f" (also used by {', '.join(uses[1:])})" if len(uses) > 1 else ""
        name, empty = variable.removesuffix(" (empty)"), variable.endswith(" (empty)")
        problems.append(
            f"{uses[0]}: environment variable {name} is {'empty' if empty else 'not set'}{also}; set it in .env or "
            "the environment"
        )
    return found


def _check_url(
    url: str, path: str, problems: list[str], warnings: list[str], as_written: str | None = None
) -> None:
    """``bot.urls.check_url``; ``as_written``: the URL as the file has it when it holds ``${NAME}``: a problem
    line quotes that, never the value the variable gave (a key put in the wrong field would be printed)."""
    check_url(url, path, problems, warnings, quoted=shown(hide_userinfo(as_written if as_written is not None else url)))


def _resolve(
    entry: Mapping[str, JsonValue],
    env: Mapping[str, str],
    path: str,
    model: type[ConnectionConfig],
    problems: list[str],
    reported: set[str],
    unset: dict[str, list[str]],
) -> Json:
    """Substitute ``${NAME}``; secret fields must come from the environment, never the file.

    A field left out for a problem reported here is added to ``reported`` (it is not "required" too)."""
    resolved: Json = {}
    for key, value in entry.items():
        field = model.model_fields.get(key)
        secret = field is not None and _is_secret(field.annotation)
        if isinstance(value, str):
            refs = _REF.findall(value)
            if secret and not (refs and _REF.fullmatch(value.strip())):
                # $NAME, ${NAME or $(NAME): a reference written the shell's way, not a secret: name their variable
                meant = _ALMOST_REF.fullmatch(value.strip())
                problems.append(
                    f"{path}.{key}: secrets do not belong in the catalog; put it in an environment "
                    f"variable and write {key}: ${{{meant.group(1) if meant else key.upper()}}}"
                )
                reported.add(key)
                continue
            missing = [r for r in refs if r not in env]
            for ref in missing:
                unset.setdefault(ref, []).append(f"{path}.{key}")
            if missing:
                reported.add(key)
                continue
            value = _REF.sub(lambda m: env[m.group(1)], value)
            if secret and not value.strip():  # left blank in .env: every call would be refused
                for ref in refs:
                    unset.setdefault(f"{ref} (empty)", []).append(f"{path}.{key}")
                reported.add(key)
                continue
            if secret and len(value.strip()) < MIN_SECRET_LENGTH:
                # a placeholder or a value cut short; and one that short could not be redacted from messages
                problems.append(
                    f"{path}.{key}: the value of {', '.join(refs)} is shorter than {MIN_SECRET_LENGTH} characters: "
                    "not a real credential (a placeholder, or cut short when copied?)"
                )
                reported.add(key)
                continue
            problem = model.unsendable(key, value) if secret else None
            if problem is not None:
                # every call would fail before it left (an HTTP header holds plain ASCII): say so here, not at run
                problems.append(
                    f"{path}.{key}: the value of {', '.join(refs)} {problem}; it is sent in an HTTP header, which "
                    "holds plain ASCII only: copy it again"
                )
                reported.add(key)
                continue
        elif secret and value is not None:
            problems.append(f"{path}.{key}: must be a reference to an environment variable, like ${{{key.upper()}}}")
            reported.add(key)
            continue
        resolved[key] = value
    return resolved


def _is_secret(annotation: object) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


def _pipelines(
    raw: Mapping[str, JsonValue],
    top: Mapping[str, JsonValue],
    connections: Mapping[str, ConnectionConfig | None],
    defaults: Defaults,
    problems: list[str],
    broken: set[str],
    *,
    env: Mapping[str, str],
    paged: PagerDutyService | None = None,
) -> dict[str, Pipeline]:
    """The valid pipelines; the name of each one with a problem (reported here) is added to ``broken``. ``paged``:
    the defaults' PagerDuty service."""
    common = set(PipelineSpec.model_fields)
    found: dict[str, Pipeline] = {}
    for name, entry in raw.items():
        path = f"pipelines.{name}"
        broken.add(str(name))  # until it is found valid
        if not NAME.match(str(name)):
            problems.append(
                f"{path}: the name is typed in Slack commands: use lower-case letters, digits, . _ - "
                "(up to 64), starting with a letter or digit"
            )
            continue
        if not isinstance(entry, dict):
            problems.append(f"{path}: must be a mapping with connection and the job's identity")
            continue
        conn_name = entry.get("connection")
        if not isinstance(conn_name, str) or conn_name not in connections:
            if conn_name is None:
                typo = difflib.get_close_matches("connection", [str(k) for k in entry], n=1, cutoff=0.6)
                problems.append(
                    f"{path}.{typo[0]}: unknown key (did you mean 'connection'?)" if typo else
                    f"{path}.connection: connection is required: the name of one under connections:"
                )
            else:
                known = list(connections)
                problems.append(
                    f"{path}.connection: {shown(conn_name)} is not a connection"
                    f"{_did_you_mean(conn_name, known) if isinstance(conn_name, str) else ''}"
                    + (f"; defined: {', '.join(known)}" if known else "; define it under connections:")
                )
            continue
        conn = connections[conn_name]
        kind = conn.provider if conn is not None else _declared_provider(top, conn_name)
        if kind is None:
            continue  # the connection's own problem is already listed
        job_model = provider(kind).job
        before = len(problems)
        own = pagerduty_of(entry.get("pagerduty"), f"{path}.pagerduty", env, problems)
        service = own if isinstance(own, PagerDutyService) else (paged if own is None else None)
        entry = {k: v for k, v in entry.items() if k != "pagerduty"}
        spec_part = {k: v for k, v in entry.items() if k in common}
        job_part = {k: v for k, v in entry.items() if k not in common}
        spec = _validate(PipelineSpec, spec_part, path, problems)
        known = sorted(common | set(job_model.model_fields) | {"pagerduty"})
        job = _validate(job_model, job_part, path, problems, allowed=known)
        if spec_part.get("parameters") and not provider(kind).client.accepts_parameters:
            problems.append(f"{path}.parameters: {provider(kind).display_name} runs take no parameters; remove them")
        refusal = job.run_refusal() if job is not None else None
        if refusal is not None and spec is not None and spec.schedule is not None:
            problems.append(f"{path}.schedule: this pipeline cannot be run: {refusal}")
        if spec is None or job is None or len(problems) > before:
            continue
        found[name] = _pipeline(str(name), kind, job, spec, defaults, service)
        broken.discard(str(name))
    return found


def _declared_provider(top: Mapping[str, JsonValue], conn_name: str) -> str | None:
    entry = (top.get("connections") or {}).get(conn_name)
    kind = entry.get("provider") if isinstance(entry, dict) else None
    return kind if isinstance(kind, str) and kind in PROVIDERS else None


def _pipeline(
    name: str, kind: str, job: JobConfig, spec: PipelineSpec, defaults: Defaults, paged: PagerDutyService | None
) -> Pipeline:
    return Pipeline(
        name=name,
        provider=kind,
        connection=spec.connection,
        job=job.with_parameter_types({n: p.type for n, p in spec.parameters.items()}),
        description=spec.description,
        tags=spec.tags,
        parameters=dict(spec.parameters),
        channel=spec.channel,
        owners=spec.owners if spec.owners is not None else defaults.owners,
        allow_run=spec.allow_run if spec.allow_run is not None else defaults.allow_run,
        allow_change=spec.allow_change if spec.allow_change is not None else defaults.allow_change,
        expected_duration=spec.expected_duration,
        watch=spec.watch if spec.watch is not None else defaults.watch,
        retry=spec.retry,
        schedule=spec.schedule,
        pagerduty=paged,
        escalate_after=_escalation_delay(spec, defaults),
        escalate_to=spec.escalate_to if spec.escalate_to is not None else defaults.escalate_to,
    )


def _escalation_delay(spec: PipelineSpec, defaults: Defaults) -> timedelta | None:
    """Its own ``escalate_after``, else the defaults'; ``none`` written in either: no escalation."""
    after = spec.escalate_after if spec.escalate_after is not None else defaults.escalate_after
    return None if after is None or after == NO_ESCALATION else after


def _workflows(
    raw: Mapping[str, JsonValue],
    pipelines: Mapping[str, Pipeline],
    broken: Collection[str],
    defaults: Defaults,
    problems: list[str],
) -> dict[str, Workflow]:
    accepts = {key: provider(key).client for key in PROVIDERS}
    found: dict[str, Workflow] = {}
    for name, entry in raw.items():
        path = f"workflows.{name}"
        if not NAME.match(str(name)):
            problems.append(f"{path}: use lower-case letters, digits, . _ - (the name is typed in Slack)")
            continue
        if name in pipelines or name in broken:
            problems.append(f"{path}: a pipeline has the same name; `run {name}` must mean one thing")
            continue
        spec, broken_steps = _workflow_spec(path, entry, problems)
        if spec is None:
            continue
        found_problems = validate_workflow(
            str(name), spec, pipelines, accepts, also_steps=broken_steps, also_pipelines=broken
        )
        if broken_steps:
            problems.extend(found_problems)
            continue
        if found_problems:
            problems.extend(found_problems)
            continue
        start = spec.start or (next(iter(spec.steps)),)
        found[name] = Workflow(
            name=str(name),
            steps=dict(spec.steps),
            start=start,
            description=spec.description,
            parameters=dict(spec.parameters),
            channel=spec.channel,
            owners=spec.owners if spec.owners is not None else defaults.owners,
            allow_run=spec.allow_run if spec.allow_run is not None else defaults.allow_run,
            allow_change=spec.allow_change if spec.allow_change is not None else defaults.allow_change,
            schedule=spec.schedule,
            tags=spec.tags,
        )
    return found


def _workflow_spec(path: str, entry: object, problems: list[str]) -> tuple[WorkflowSpec | None, set[str]]:
    """Each step is validated on its own, so one bad step does not hide the others' problems.

    Returns the spec of the valid steps and the names of the broken ones (already reported)."""
    if not isinstance(entry, dict):
        problems.append(f"{path}: must be a mapping with steps")
        return None, set()
    raw_steps = entry.get("steps")
    if not isinstance(raw_steps, dict) or not raw_steps:
        problems.append(
            f"{path}.steps: steps is required: a mapping of step names to pipelines or approvals, e.g. "
            "{ingest: {pipeline: orders-eu}}"
        )
        return None, set()
    valid: Json = {}
    broken: set[str] = set()
    for step_name, raw_step in raw_steps.items():
        step = _validate(StepSpec, raw_step, f"{path}.steps.{step_name}", problems)
        if step is None:
            broken.add(str(step_name))
        else:
            valid[str(step_name)] = step.model_dump()
    placeholder = valid or {"_": {"pipeline": "_"}}  # the rest of the workflow is still checked
    spec = _validate(WorkflowSpec, {**entry, "steps": placeholder}, path, problems)
    if spec is None or not valid:
        return None, broken
    return spec, broken


def _routes(raw: object, problems: list[str]) -> list[RouteRule]:
    if not isinstance(raw, list):
        problems.append("routes: must be a list of rules like {provider: rivery, channel: '#ingest'}")
        return []
    rules = []
    for i, entry in enumerate(raw):
        rule = _validate(RouteRule, entry, f"routes[{i}]", problems)
        if rule is not None:
            if rule.provider is not None and rule.provider not in PROVIDERS:
                problems.append(f"routes[{i}].provider: {shown(rule.provider)} is not a provider")
            rules.append(rule)
    return rules


def _alerts_reach_people(
    pipelines: Mapping[str, Pipeline],
    routes: list[RouteRule],
    defaults: Defaults,
    problems: list[str],
    *,
    channels_known: bool = True,
) -> None:
    """A watched pipeline's failures have no card to show them: without a channel for its alerts they would be
    dropped. Owners are mentioned in alerts: a channel id or ``*`` there would mention nobody."""
    where = Catalog(connections={}, pipelines=pipelines, defaults=defaults, routes=tuple(routes))
    for pipeline in pipelines.values() if channels_known else ():
        if pipeline.watch and where.channel_for(pipeline) is None:
            problems.append(
                f"pipelines.{pipeline.name}: watched but no channel for alerts; set channel or defaults.channel"
            )
        elif pipeline.schedule is not None and where.channel_for(pipeline) is None:
            # nobody asks for a schedule's run: no channel means no card, and its failure no alert
            problems.append(
                f"pipelines.{pipeline.name}: scheduled but no channel for its runs; set channel or defaults.channel"
            )
    owner_lists = [("defaults.owners", defaults.owners)] + [
        (f"pipelines.{p.name}.owners", p.owners) for p in pipelines.values() if p.owners != defaults.owners
    ]
    for path, owners in owner_lists:
        for owner in owners:
            if not owner.startswith(("U", "W", "S", "@")) and "@" not in owner:  # @handle, e-mail: resolved at start
                problems.append(
                    f"{path}: {shown(owner)} cannot be mentioned in an alert; owners are people (U… or an e-mail) "
                    "or user groups (S… or @handle)"
                )


def _mentionable(value: str) -> bool:
    """A person (U…, W…, an e-mail) or a user group (S…, @handle): what a message can mention."""
    return value.startswith(("U", "W", "S", "@")) or "@" in value


def _escalations(
    pipelines: Mapping[str, Pipeline], defaults: Defaults, problems: list[str], warnings: list[str]
) -> None:
    """``escalate_to`` is mentioned in the alert's thread: a channel or ``*`` there would ping nobody. An alert
    that escalates to nobody (no owners, no ``escalate_to``) is worth a warning: it would wait in silence."""
    own = [p for p in pipelines.values() if p.escalate_to != defaults.escalate_to]
    lists = [("defaults.escalate_to", defaults.escalate_to)]
    lists += [(f"pipelines.{p.name}.escalate_to", p.escalate_to) for p in own]
    for path, entries in lists:
        for entry in entries:
            if not _mentionable(entry):
                problems.append(
                    f"{path}: {shown(entry)} cannot be pinged when an alert escalates; escalate_to is a user group "
                    "(S… or @handle) or people (U… or an e-mail)"
                )
    for pipeline in pipelines.values():
        if pipeline.escalate_after is not None and not pipeline.owners and not pipeline.escalate_to:
            warnings.append(
                f"pipelines.{pipeline.name}: its alerts escalate after {_duration(pipeline.escalate_after)} but "
                "nobody would be pinged: set owners or escalate_to (or escalate_after: none)"
            )


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


# -- pydantic errors as lines -----------------------------------------------------------------


def _validate(
    model: type[M],
    data: object,
    path: str,
    problems: list[str],
    allowed: Iterable[str] | None = None,
    reported: Collection[str] = (),
) -> M | None:
    """``reported``: fields whose own problem is listed already, not to be called missing as well."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        names = list(allowed) if allowed is not None else list(model.model_fields)
        errors = exc.errors()
        misspelt = _misspelt(errors, model, names)
        for err in errors:
            if err["type"] == "missing" and err["loc"] and str(err["loc"][0]) in reported:
                continue
            if err["type"] == "missing" and tuple(err["loc"]) in misspelt:  # the typo's line says it: once
                continue
            if reported and not err["loc"]:  # about the whole entry: follows from a field left out, said already
                continue
            nested = err["type"] == "extra_forbidden" and len(err["loc"]) > 1
            problems.append(_line(path, err, _keys_at(model, err["loc"][:-1]) if nested else names))
        return None


def _misspelt(errors: Iterable[ErrorDetails], model: type[BaseModel], names: list[str]) -> set[tuple[int | str, ...]]:
    """The places of required keys that are missing because they were misspelt (``river_idd:`` for
    ``river_id:``): the unknown key's "did you mean" says it, "is required" as well would be the mistake twice."""
    found = set()
    for err in errors:
        if err["type"] == "extra_forbidden" and err["loc"]:
            *inside, key = err["loc"]
            keys = _keys_at(model, tuple(inside)) if inside else names  # as _line's "did you mean" compares
            close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.6)
            if close:
                found.add((*inside, close[0]))
    return found


def _keys_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys of the mapping at ``loc`` inside ``model`` (``retry`` → RetryPolicy's): an unknown key there
    is compared with those, not with the entry's own."""
    models: list[type[BaseModel]] = [model]
    for part in loc:
        inner = [m for found in models if (f := found.model_fields.get(str(part))) for m in _models_in(f.annotation)]
        models = inner or models  # a list index or a name in a mapping of entries: the same kind of entry
    return sorted({name for found in models for name in found.model_fields})


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _line(path: str, err: ErrorDetails, names: list[str]) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    where = f"{path}.{loc}" if loc else path
    if err["type"] == "extra_forbidden":
        hint = _did_you_mean(str(err["loc"][-1]), names)  # the word meant, else every word there is
        return f"{where}: unknown key{hint or '; known keys: ' + ', '.join(sorted(names))}"
    return f"{where}: {plain_error(err, _field_name(path, err['loc']))}"


def _field_name(path: str, loc: tuple[int | str, ...]) -> str:
    """The name a person wrote for the field in error: ``owners``, ``owners[1]``; the entry's own name when the
    whole entry is wrong."""
    named = [i for i, part in enumerate(loc) if isinstance(part, str)]
    if not named:
        return path.rsplit(".", 1)[-1] + "".join(f"[{part}]" for part in loc)
    last = named[-1]
    return str(loc[last]) + "".join(f"[{part}]" for part in loc[last + 1 :])


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
