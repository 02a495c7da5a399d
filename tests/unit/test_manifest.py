"""``manifest.yml`` against the code: what the app registers and calls must be declared and granted, and
nothing more may be granted.

- Registrations come from the real ``build_app`` (every ``app.command/event/action/view/…`` call recorded),
  plus an ``ast`` scan for event listeners registered anywhere else in ``bot/``.
- Web API calls come from an ``ast`` scan of ``bot/`` (outside ``bot/emulators/``): every attribute named like
  an ``AsyncWebClient`` API method (``chat_postMessage`` → ``chat.postMessage``), ``api_call("x.y")`` and
  Bolt's ``say(...)`` (``chat.postMessage``). ``respond`` uses the response_url and needs no scope.
- ``METHOD_SCOPES`` says which bot scopes serve each method; a method missing from it fails the test, so a new
  call gets a conscious decision about its scope.

``manifest_problems`` does the checking and returns readable problems; the drift tests feed it a changed
registration list, call list or manifest and assert that it names what is missing.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import pytest
import yaml
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.slack.commands.grammar import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest.yml"
BOT = ROOT / "bot"
EXCLUDED = BOT / "emulators"  # the fake Slack and the providers' emulators are not the bot's calls


@dataclass(frozen=True)
class Need:
    """Scopes for one Web API method: at least one of ``any_of`` must be granted (none: no scope needed);
    ``also`` may be granted for its sake (a wider reach of the same call)."""

    any_of: tuple[str, ...] = ()
    also: tuple[str, ...] = ()


# Web API method → bot-token scopes (https://api.slack.com/methods/<method>, "Required scopes", bot token).
CONVERSATION_READ = ("channels:read", "groups:read", "im:read", "mpim:read")
METHOD_SCOPES: dict[str, Need] = {
    "auth.test": Need(),
    "chat.postMessage": Need(("chat:write",), also=("chat:write.public", "chat:write.customize")),
    "chat.update": Need(("chat:write",)),
    "chat.delete": Need(("chat:write",)),
    "chat.postEphemeral": Need(("chat:write",)),
    "chat.getPermalink": Need(),
    "functions.completeSuccess": Need(),  # a custom step's end: "No scope required"
    "functions.completeError": Need(),
    "views.open": Need(),
    "views.update": Need(),
    "views.push": Need(),
    "views.publish": Need(),
    "usergroups.list": Need(("usergroups:read",)),
    "usergroups.users.list": Need(("usergroups:read",)),
    "conversations.history": Need(("channels:history", "groups:history", "im:history", "mpim:history")),
    "conversations.replies": Need(("channels:history", "groups:history", "im:history", "mpim:history")),
    "conversations.members": Need(CONVERSATION_READ),
    "conversations.info": Need(CONVERSATION_READ),
    "conversations.list": Need(CONVERSATION_READ),
    "conversations.open": Need(("im:write", "mpim:write")),
    "conversations.join": Need(("channels:join",)),
    "users.info": Need(("users:read",)),
    "users.list": Need(("users:read",)),
    # Slack grants users:read.email only beside users:read
    "users.lookupByEmail": Need(("users:read.email",), also=("users:read",)),
    "reactions.add": Need(("reactions:write",)),
}

# Events → the scopes that subscribing to them needs (any one of them).
EVENT_SCOPES: dict[str, tuple[str, ...]] = {
    "app_home_opened": (),
    "function_executed": (),  # sent for the app's own custom steps (``app.function``), no scope
    "app_mention": ("app_mentions:read",),
    "member_joined_channel": ("channels:read", "groups:read"),
    "message": ("channels:history", "groups:history", "im:history", "mpim:history"),
    "message.im": ("im:history",),
    "message.channels": ("channels:history",),
}

INTERACTIVE = {
    "action",
    "block_action",
    "view",
    "view_submission",
    "view_closed",
    "options",
    "block_suggestion",
    "shortcut",
    "global_shortcut",
    "message_shortcut",
    "attachment_action",
    "dialog_submission",
    "dialog_suggestion",
    "dialog_cancellation",
}
LISTENER_KINDS = {"command", "event", "message", "function", *INTERACTIVE}


@dataclass(frozen=True)
class Registration:
    kind: str  # the AsyncApp method: command, event, action, view, …
    key: str  # its first argument, as text


@dataclass(frozen=True)
class Call:
    method: str  # Web API method, like chat.postMessage
    where: str  # file:line


# -- collecting from the code ---------------------------------------------------------------------------------


class RecordingApp(AsyncApp):
    """The real AsyncApp that also remembers every listener registration."""

    registrations: list[Registration]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.registrations = []
        super().__init__(*args, **kwargs)


def _recording(kind: str) -> Any:
    original = getattr(AsyncApp, kind)

    def method(self: RecordingApp, *args: Any, **kwargs: Any) -> Any:
        key = args[0] if args else next(iter(kwargs.values()), "")
        if isinstance(key, dict):  # app.event({"type": "message", "subtype": …}), app.action({"action_id": …})
            key = key.get("type") or key.get("action_id") or key.get("callback_id") or key
        self.registrations.append(Registration(kind, key.pattern if isinstance(key, re.Pattern) else str(key)))
        return original(self, *args, **kwargs)

    return method


for _kind in sorted(LISTENER_KINDS):
    setattr(RecordingApp, _kind, _recording(_kind))


def registered(monkeypatch: pytest.MonkeyPatch) -> list[Registration]:
    """Build the bot's real app with the default settings and return what it registered."""
    import bot.slack.app

    for name in ("SLACK_COMMAND", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None, slack_bot_token="xoxb-test", slack_signing_secret="secret")
    services = MagicMock(name="services")
    services.settings = settings
    services.command = settings.slack_command
    client = AsyncWebClient(token="xoxb-test", base_url="http://127.0.0.1:9/api/")
    monkeypatch.setattr(bot.slack.app, "AsyncApp", RecordingApp)
    app = bot.slack.app.build_app(settings, services, client)
    assert isinstance(app, RecordingApp)
    return app.registrations


def _python_files(root: Path) -> Iterable[Path]:
    excluded = root / EXCLUDED.name
    for path in sorted(root.rglob("*.py")):
        if excluded not in path.parents:
            yield path


def event_registrations_in_source(root: Path = BOT) -> list[Registration]:
    """``<anything>.event("name")`` / ``.message(...)`` calls with a literal first argument, anywhere in bot/."""
    found = []
    for path in _python_files(root):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("event", "message")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.append(Registration(node.func.attr, node.args[0].value))
    return found


API_METHODS = {
    name
    for name, _ in inspect.getmembers(AsyncWebClient, inspect.iscoroutinefunction)
    if not name.startswith("_") and name != "api_call"
}


DOTTED_METHODS = {name.replace("_", ".") for name in API_METHODS}


@functools.cache
def web_api_calls(root: Path = BOT) -> tuple[Call, ...]:
    """Web API methods the code under ``root`` calls: ``client.chat_postMessage``, ``api_call("chat.update")``,
    a method name handed to a wrapper (``self._call("chat.postMessage", …)``: any call argument that is a
    Web API method name), and Bolt's ``say(...)``."""
    calls = []
    for path in _python_files(root):
        rel = path.relative_to(root.parent) if root.parent in path.parents else path
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute) and node.attr in API_METHODS:
                calls.append(Call(node.attr.replace("_", "."), where))
            elif isinstance(node, ast.Call):
                func = node.func
                literals = [
                    a.value
                    for a in [*node.args, *(k.value for k in node.keywords)]
                    if isinstance(a, ast.Constant) and isinstance(a.value, str)
                ]
                calls += [Call(name, where) for name in literals if name in DOTTED_METHODS]
                if isinstance(func, ast.Attribute) and func.attr == "api_call" and node.args and literals:
                    first = node.args[0]
                    if isinstance(first, ast.Constant) and first.value not in DOTTED_METHODS:
                        calls.append(Call(str(first.value), where))  # a method newer than slack_sdk
                elif isinstance(func, ast.Name) and func.id == "say":
                    calls.append(Call("chat.postMessage", f"{where} (say)"))
    return tuple(calls)


def load_manifest(path: Path = MANIFEST) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a mapping"
    return data


# -- the check ------------------------------------------------------------------------------------------------


def manifest_problems(
    manifest: dict[str, Any],
    registrations: Iterable[Registration],
    calls: Iterable[Call],
) -> list[str]:
    """Everything that does not match between the manifest and the code, one readable line each."""
    problems: list[str] = []
    registrations = list(registrations)
    calls = list(calls)
    features = manifest.get("features") or {}
    settings = manifest.get("settings") or {}
    granted = set(((manifest.get("oauth_config") or {}).get("scopes") or {}).get("bot") or [])
    declared_commands = {c.get("command") for c in features.get("slash_commands") or []}
    declared_events = set((settings.get("event_subscriptions") or {}).get("bot_events") or [])
    declared_shortcuts = {s.get("callback_id") for s in features.get("shortcuts") or []}
    justified: set[str] = set()

    # (a) what the code listens to is declared
    commands = {r.key for r in registrations if r.kind == "command"}
    for name in sorted(commands - declared_commands):
        problems.append(f"slash command {name} is registered but not in features.slash_commands")
    for name in sorted(declared_commands - commands):
        problems.append(f"slash command {name} is declared but the code registers no listener for it")
    if commands:
        justified.add("commands")
        if "commands" not in granted:
            problems.append("scope commands is missing: the app has a slash command")

    events = {r.key for r in registrations if r.kind == "event"}
    if any(r.kind == "message" for r in registrations):
        events.add("message")
    functions = {r.key for r in registrations if r.kind == "function"}
    declared_functions = set(manifest.get("functions") or {})
    if functions:
        events.add("function_executed")  # Bolt's app.function listens to it
        if settings.get("function_runtime") != "remote":
            problems.append("settings.function_runtime: must be remote, the app runs its custom steps itself")
        if settings.get("org_deploy_enabled") is not True:
            problems.append("settings.org_deploy_enabled: must be true, Slack offers custom steps of org-ready apps")
    for name in sorted(functions - declared_functions):
        problems.append(f"custom step {name} has a listener but is not in functions")
    for name in sorted(declared_functions - functions):
        problems.append(f"custom step {name} is declared in functions but the code registers no listener for it")
    for name in sorted(events):
        message_declared = name == "message" and any(e.startswith("message.") for e in declared_events)
        if name not in declared_events and not message_declared:
            problems.append(f"event {name} has a listener but is not in settings.event_subscriptions.bot_events")
        if name not in EVENT_SCOPES:
            problems.append(f"event {name}: unknown here; add it to EVENT_SCOPES in {Path(__file__).name}")
            continue
        needs = EVENT_SCOPES[name]
        justified.update(needs)
        if needs and not granted & set(needs):
            problems.append(f"event {name} needs one of the scopes {', '.join(needs)}; none is granted")
    for name in sorted(declared_events - events):
        if not (name.startswith("message.") and "message" in events):
            problems.append(f"event {name} is in bot_events but the code has no listener for it")
    if features.get("app_home", {}).get("home_tab_enabled") and "app_home_opened" not in events:
        problems.append("the Home tab is enabled but nothing listens to app_home_opened to draw it")

    interactive = sorted({f"app.{r.kind}({r.key!r})" for r in registrations if r.kind in INTERACTIVE})
    enabled = bool((settings.get("interactivity") or {}).get("is_enabled"))
    if interactive and not enabled:
        problems.append(f"interactivity is off but the code listens to {', '.join(interactive)}")
    if enabled and not interactive:
        problems.append("interactivity is on but the code registers no action, view or shortcut listener")
    for r in registrations:
        if r.kind in ("shortcut", "global_shortcut", "message_shortcut") and r.key not in declared_shortcuts:
            problems.append(f"shortcut {r.key} is registered but not in features.shortcuts")

    # (b) every call's scope is granted, every granted scope is used
    for call in calls:
        need = METHOD_SCOPES.get(call.method)
        if need is None:
            problems.append(f"{call.method} ({call.where}): unknown here; add its scopes to METHOD_SCOPES")
            continue
        justified.update(need.any_of, need.also)
        if need.any_of and not granted & set(need.any_of):
            problems.append(
                f"{call.method} ({call.where}) needs one of the scopes {', '.join(need.any_of)}; none is granted"
            )
    for scope in sorted(granted - justified):
        problems.append(f"scope {scope} is granted but no call, command or event uses it")
    return problems


def limit_problems(manifest: dict[str, Any]) -> list[str]:
    """(c) field limits, from Slack's manifest schema, and (d) Socket Mode without request URLs."""
    problems: list[str] = []

    def length(where: str, value: Any, low: int, high: int) -> None:
        if not isinstance(value, str) or not low <= len(value) <= high:
            shown = len(value) if isinstance(value, str) else repr(value)
            problems.append(f"{where}: length {shown}, must be {low}..{high} characters")

    info = manifest.get("display_information") or {}
    length("display_information.name", info.get("name"), 1, 35)
    if "description" in info:
        length("display_information.description", info["description"], 1, 140)
    if "long_description" in info:
        length("display_information.long_description", info["long_description"], 175, 4000)
    if "background_color" in info and not re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", info["background_color"]):
        problems.append("display_information.background_color: must be like #1f4e79")
    features = manifest.get("features") or {}
    bot_user = features.get("bot_user")
    if not bot_user:
        problems.append("features.bot_user: missing; the app needs a bot user")
    else:
        length("features.bot_user.display_name", bot_user.get("display_name"), 1, 80)
    if not (features.get("app_home") or {}).get("home_tab_enabled"):
        problems.append("features.app_home.home_tab_enabled: must be true (the Home tab shows runs and alerts)")
    for i, cmd in enumerate(features.get("slash_commands") or []):
        where = f"features.slash_commands[{i}]"
        length(f"{where}.command", cmd.get("command"), 2, 32)
        if not re.fullmatch(r"/[a-z0-9_\-]+", str(cmd.get("command"))):
            problems.append(f"{where}.command: a slash, then lower-case letters, digits, - or _")
        length(f"{where}.description", cmd.get("description"), 1, 2000)
        length(f"{where}.usage_hint", cmd.get("usage_hint"), 1, 1000)
        if cmd.get("should_escape") is not True:
            problems.append(f"{where}.should_escape: must be true (the parser expects <#C…|name> channels)")
    for scope in ((manifest.get("oauth_config") or {}).get("scopes") or {}).get("bot") or []:
        length(f"oauth_config.scopes.bot {scope!r}", scope, 1, 50)

    settings = manifest.get("settings") or {}
    if settings.get("socket_mode_enabled") is not True:
        problems.append("settings.socket_mode_enabled: must be true (Socket Mode is the default; HTTP in docs)")
    urls = [
        ("settings.event_subscriptions.request_url", (settings.get("event_subscriptions") or {}).get("request_url")),
        ("settings.interactivity.request_url", (settings.get("interactivity") or {}).get("request_url")),
        *(
            (f"features.slash_commands[{i}].url", c.get("url"))
            for i, c in enumerate(features.get("slash_commands") or [])
        ),
    ]
    if settings.get("socket_mode_enabled"):
        problems += [f"{where}: no request URLs in Socket Mode" for where, url in urls if url]
    return problems


# -- the real manifest against the real code ------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return load_manifest()


def test_registrations_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """The recorder sees what build_app registers: otherwise the checks below would pass vacuously."""
    regs = registered(monkeypatch)
    kinds = {r.kind for r in regs}
    assert Registration("command", "/pipeline") in regs
    assert Registration("event", "app_home_opened") in regs
    assert {"action", "view"} <= kinds


def test_calls_are_found() -> None:
    methods = {c.method for c in web_api_calls()}
    assert {"chat.postMessage", "chat.update", "views.publish", "usergroups.users.list"} <= methods
    assert not any(EXCLUDED.name in c.where.split("/") for c in web_api_calls())


def test_manifest_matches_the_code(manifest: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    regs = registered(monkeypatch) + event_registrations_in_source()
    problems = manifest_problems(manifest, regs, web_api_calls())
    assert not problems, "manifest.yml and the code disagree:\n" + "\n".join(problems)


def test_manifest_field_limits_and_socket_mode(manifest: dict[str, Any]) -> None:
    problems = limit_problems(manifest)
    assert not problems, "manifest.yml breaks Slack's limits:\n" + "\n".join(problems)


def test_command_is_the_default_setting(manifest: dict[str, Any]) -> None:
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == [Settings.model_fields["slack_command"].default]


def test_usage_hint_names_every_command(manifest: dict[str, Any]) -> None:
    hint = manifest["features"]["slash_commands"][0]["usage_hint"]
    named = [part.split()[0] for part in hint.split(" | ")]
    assert sorted(named) == sorted(spec.name for spec in COMMANDS)


def test_scopes_are_listed_once_and_no_user_scopes(manifest: dict[str, Any]) -> None:
    scopes = manifest["oauth_config"]["scopes"]
    assert len(scopes["bot"]) == len(set(scopes["bot"]))
    assert not scopes.get("user"), "the bot acts with its bot token only"
    assert "connections:write" not in scopes["bot"], "an app-level token scope, not a bot scope"


# -- drift: the same checks must fail when code and manifest part ---------------------------------------------


def test_an_undeclared_event_handler_is_reported(manifest: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Register one more event listener inside the real build_app, as a developer would, and check again."""
    import bot.slack.events.home as home

    original = home.register

    def register(app: AsyncApp, services: Any) -> None:
        original(app, services)

        async def joined(event: dict[str, Any]) -> None:
            return None

        app.event("member_joined_channel")(joined)

    monkeypatch.setattr(home, "register", register)
    problems = manifest_problems(manifest, registered(monkeypatch), web_api_calls())
    assert any("event member_joined_channel" in p and "bot_events" in p for p in problems), problems
    others = [r for r in registered(monkeypatch) if r.key != "member_joined_channel"]
    assert manifest_problems(manifest, others, web_api_calls()) == []  # only that one


def test_undeclared_command_action_and_shortcut_are_reported(manifest: dict[str, Any]) -> None:
    no_interactivity = {**manifest, "settings": {**manifest["settings"], "interactivity": {"is_enabled": False}}}
    regs = [
        Registration("command", "/pipeline"),
        Registration("command", "/pipeline-admin"),
        Registration("event", "app_home_opened"),
        Registration("action", "run.refresh"),
        Registration("shortcut", "run_pipeline"),
    ]
    problems = manifest_problems(no_interactivity, regs, [])
    assert any("/pipeline-admin" in p and "features.slash_commands" in p for p in problems), problems
    assert any("interactivity is off" in p and "run.refresh" in p for p in problems), problems
    assert any("shortcut run_pipeline" in p for p in problems), problems


def test_a_declared_event_without_listener_is_reported(manifest: dict[str, Any]) -> None:
    extra = {
        **manifest,
        "settings": {**manifest["settings"], "event_subscriptions": {"bot_events": ["app_home_opened", "app_mention"]}},
    }
    problems = manifest_problems(extra, [Registration("event", "app_home_opened")], [])
    assert any("event app_mention is in bot_events but the code has no listener" in p for p in problems), problems


def test_a_call_without_its_scope_is_reported(manifest: dict[str, Any], tmp_path: Path) -> None:
    """New calls in a scratch package, found by the same scanner, fail the check with the scope to grant."""
    package = tmp_path / "bot"
    (package / "emulators").mkdir(parents=True)
    (package / "people.py").write_text(
        "async def who(client, say):\n"
        "    await client.conversations_join(channel='C1')\n"
        "    await client.api_call('reactions.add', params={'name': 'eyes'})\n"
        "    await client.apps_uninstall()\n"
        "    await say('hello')\n"
        "    await wrapper.send('chat.delete', channel='C1', ts='1')\n"
        "    await client.api_call('teams.brandNewMethod')\n"
    )
    (package / "emulators" / "fake.py").write_text("async def f(client):\n    await client.admin_users_list()\n")
    calls = web_api_calls(package)
    assert {c.method for c in calls} == {
        "conversations.join",
        "reactions.add",
        "apps.uninstall",
        "chat.postMessage",
        "chat.delete",
        "teams.brandNewMethod",
    }
    problems = manifest_problems(manifest, [], calls)
    assert any(p.startswith("conversations.join (bot/people.py:2) needs one of the scopes channels:join")
               for p in problems), problems
    assert any(p.startswith("reactions.add") and "reactions:write" in p for p in problems), problems
    assert any(p.startswith("apps.uninstall") and "add its scopes to METHOD_SCOPES" in p for p in problems), problems
    assert any(p.startswith("teams.brandNewMethod (bot/people.py:7)") for p in problems), problems
    assert not any(p.startswith("chat.delete") for p in problems), "chat:write is granted"


def test_an_unused_scope_is_reported(manifest: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    wider = {
        **manifest,
        "oauth_config": {"scopes": {"bot": [*manifest["oauth_config"]["scopes"]["bot"], "reactions:write", "im:write"]}},
    }
    problems = manifest_problems(wider, registered(monkeypatch), web_api_calls())
    assert "scope im:write is granted but no call, command or event uses it" in problems
    assert "scope reactions:write is granted but no call, command or event uses it" in problems


def test_names_in_the_catalog_can_be_resolved(manifest: dict[str, Any]) -> None:
    """#channel, @handle and e-mail entries (conversations.list, usergroups.list, users.lookupByEmail) and the
    online check (conversations.info, users.info) need these, issue 15."""
    needed = {"channels:read", "groups:read", "usergroups:read", "users:read", "users:read.email"}
    assert needed <= set(manifest["oauth_config"]["scopes"]["bot"])
    methods = {c.method for c in web_api_calls()}
    assert {"conversations.list", "usergroups.list", "users.lookupByEmail", "conversations.info", "users.info"} <= methods


def test_a_removed_scope_is_reported(manifest: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    narrower = {
        **manifest,
        "oauth_config": {
            "scopes": {"bot": [s for s in manifest["oauth_config"]["scopes"]["bot"] if s != "usergroups:read"]}
        },
    }
    problems = manifest_problems(narrower, registered(monkeypatch), web_api_calls())
    assert any(p.startswith("usergroups.users.list (bot/runtime.py:") and "usergroups:read" in p for p in problems), (
        problems
    )


def test_limits_and_http_urls_are_reported(manifest: dict[str, Any]) -> None:
    command = {
        **manifest["features"]["slash_commands"][0],
        "command": "/" + "p" * 32,
        "should_escape": False,
        "url": "https://bot.example.com/slack/events",
        "usage_hint": "x" * 1001,
    }
    broken = {
        **manifest,
        "display_information": {**manifest["display_information"], "name": "n" * 36, "long_description": "short"},
        "features": {**manifest["features"], "slash_commands": [command]},
        "settings": {
            **manifest["settings"],
            "interactivity": {"is_enabled": True, "request_url": "https://bot.example.com/slack/events"},
        },
    }
    problems = limit_problems(broken)
    for expected in (
        "display_information.name: length 36",
        "long_description: length 5",
        "slash_commands[0].command: length 33",
        "usage_hint: length 1001",
        "should_escape",
        "settings.interactivity.request_url: no request URLs in Socket Mode",
        "features.slash_commands[0].url: no request URLs in Socket Mode",
    ):
        assert any(expected in p for p in problems), (expected, problems)
    http = {**manifest, "settings": {**manifest["settings"], "socket_mode_enabled": False}}
    assert any("socket_mode_enabled" in p for p in limit_problems(http))


# -- the deploy guide follows the settings ----------------------------------------------------------------------


def test_deploy_guide_lists_every_setting() -> None:
    guide = (ROOT / "docs" / "DEPLOY.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"`{name.upper()}`" in guide, f"docs/DEPLOY.md does not describe {name.upper()}"
        default = field.get_default(call_default_factory=True)
        if isinstance(default, timedelta):  # a duration is set, and documented, as a number of seconds
            default = default.total_seconds()
        if default not in (None, [], ""):
            assert str(default) in guide, f"docs/DEPLOY.md does not give the default of {name.upper()}: {default}"


# -- the Workflow Builder step ------------------------------------------------------------------------------------


def test_the_step_is_registered_and_declared(manifest: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.slack.events.steps import CALLBACK_ID

    assert Registration("function", CALLBACK_ID) in registered(monkeypatch)
    assert CALLBACK_ID in manifest["functions"]
    assert "function_executed" in manifest["settings"]["event_subscriptions"]["bot_events"]


def test_the_steps_parameters_are_what_the_code_reads_and_writes(manifest: dict[str, Any]) -> None:
    """The inputs the listener reads and the outputs its completion returns, as the manifest declares them; the
    person is Slack's ``user_context`` (never typed by the workflow's builder), required."""
    from bot.slack.events.steps import CALLBACK_ID, INPUTS, OUTPUTS

    step = manifest["functions"][CALLBACK_ID]
    length("functions.run_pipeline.title", step["title"])
    inputs, outputs = step["input_parameters"], step["output_parameters"]
    assert sorted(inputs["properties"]) == sorted(INPUTS)
    assert sorted(outputs["properties"]) == sorted(OUTPUTS)
    assert inputs["properties"]["user_context"]["type"] == "slack#/types/user_context"
    assert {"pipeline", "user_context"} <= set(inputs["required"])
    # delivery adds card_url only when the card has a link: it cannot be required
    assert set(outputs["required"]) == {"run_number", "state"}
    for where in (inputs, outputs):
        for name, spec in where["properties"].items():
            assert spec.get("type") and spec.get("title"), f"{name}: a type and a title, as Workflow Builder shows"


def length(where: str, value: Any) -> None:
    assert isinstance(value, str) and 1 <= len(value) <= 255, f"{where}: 1..255 characters"


def test_an_undeclared_step_is_reported(manifest: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    without = {k: v for k, v in manifest.items() if k != "functions"}
    without["settings"] = {**manifest["settings"], "function_runtime": None, "org_deploy_enabled": False}
    problems = manifest_problems(without, registered(monkeypatch), web_api_calls())
    assert "custom step run_pipeline has a listener but is not in functions" in problems, problems
    assert any(p.startswith("settings.function_runtime") for p in problems), problems
    assert any(p.startswith("settings.org_deploy_enabled") for p in problems), problems
    extra = {**manifest, "functions": {**manifest["functions"], "other_step": {"title": "Other"}}}
    problems = manifest_problems(extra, registered(monkeypatch), web_api_calls())
    assert problems == ["custom step other_step is declared in functions but the code registers no listener for it"]
