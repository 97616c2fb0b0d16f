"""Contexts, as kubeconfig has them: named coordinators with their CA and
token, in one YAML file, and how octoctl picks the settings it connects with.

    current-context: prod
    contexts:
    - name: prod
      coordinator: [coord-a.example:7400, coord-b.example:7400]
      ca: /etc/octobot/ca.pem
      token-file: ~/.config/octobot/prod.token

Each setting comes from the first source that has it: the command line, the
environment (OCTOBOT_COORDINATOR, OCTOBOT_TOKEN, OCTOBOT_CA), the context
(--context, else current-context), the defaults. The file holds tokens, so it
is written mode 0600 in a 0700 directory.
"""

from __future__ import annotations

import dataclasses

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from octobot import rpc
from octobot.ctl.output import emit, output_option

DEFAULT_COORDINATOR = "127.0.0.1:7400"
CONTEXT_KEYS = ("name", "coordinator", "ca", "token", "token-file", "insecure")


class ConfigError(click.ClickException):
    """A config file, context or credential octoctl cannot use: a usage problem."""

    exit_code = 2


def split_addresses(values: Iterable[str]) -> tuple[str, ...]:
    """Repeated and comma-separated ``host:port`` values, in order."""
    return tuple(address.strip() for value in values for address in value.split(",") if address.strip())


@dataclass(frozen=True, slots=True)
class Settings:
    """What one source (command line, environment, context) says; empty or
    None where it says nothing."""

    coordinator: tuple[str, ...] = ()
    ca: str | None = None
    token: str | None = None
    token_file: str | None = None
    insecure: bool | None = None

    def over(self, lower: Settings) -> Settings:
        """These settings, with what they leave unset taken from ``lower``. A
        token and a token file are one setting: either replaces the other."""
        credential = self if self.token is not None or self.token_file is not None else lower
        return Settings(self.coordinator or lower.coordinator, lower.ca if self.ca is None else self.ca,
                        credential.token, credential.token_file,
                        lower.insecure if self.insecure is None else self.insecure)


DEFAULTS = Settings(coordinator=(DEFAULT_COORDINATOR,), insecure=False)


def from_env(env: Mapping[str, str]) -> Settings:
    return Settings(split_addresses([env.get("OCTOBOT_COORDINATOR", "")]), env.get("OCTOBOT_CA") or None,
                    env.get("OCTOBOT_TOKEN") or None)


def resolve(flags: Settings, env: Mapping[str, str], context: Settings) -> Settings:
    """Per setting: the command line, else the environment, else the context, else
    the default. A context's token goes only to that context's coordinators, never
    to an address given on the command line or in the environment."""
    outer = flags.over(from_env(env))
    if outer.coordinator and outer.coordinator != context.coordinator:
        context = dataclasses.replace(context, token=None, token_file=None)
    return outer.over(context.over(DEFAULTS))


def config_path(env: Mapping[str, str]) -> Path:
    """$OCTOBOT_CONFIG, else $XDG_CONFIG_HOME/octobot/config.yaml, else ~/.config/octobot/config.yaml."""
    if env.get("OCTOBOT_CONFIG"):
        return Path(env["OCTOBOT_CONFIG"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path("~/.config").expanduser()
    return base / "octobot" / "config.yaml"


@dataclass
class Config:
    """The file: contexts by name, in file order, and the current one's name."""

    path: Path
    contexts: dict[str, Settings] = field(default_factory=dict)
    current: str | None = None
    found: bool = False

    def context(self, name: str) -> Settings:
        if name in self.contexts:
            return self.contexts[name]
        where = f"in {self.path}" if self.found else f"({self.path} does not exist)"
        raise ConfigError(f"no context named {name!r} {where}; see `octoctl config get-contexts`")

    def selected(self, name: str | None) -> Settings:
        """The context ``name`` (--context), else the current one, else nothing."""
        name = name or self.current
        return Settings() if name is None else self.context(name)


def _string(entry: dict[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return value or None


def _context(entry: Any, where: str, base: Path) -> tuple[str, Settings]:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: each context must be a mapping")
    unknown = sorted(set(entry) - set(CONTEXT_KEYS), key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(CONTEXT_KEYS)})")
    name = _string(entry, "name", where)
    if not name:
        raise ConfigError(f"{where}: every context needs a name")
    where = f"{where} ({name})"
    coordinator = entry.get("coordinator", [])
    if not isinstance(coordinator, list) or not all(isinstance(a, str) and a for a in coordinator):
        raise ConfigError(f"{where}: coordinator must be a list of host:port")
    insecure = entry.get("insecure")
    if insecure is not None and not isinstance(insecure, bool):
        raise ConfigError(f"{where}: insecure must be true or false")
    token, token_file = _string(entry, "token", where), _string(entry, "token-file", where)
    if token is not None and token_file is not None:
        raise ConfigError(f"{where}: give token or token-file, not both")
    # Relative paths are relative to the config file, so they work from any directory.
    ca = _string(entry, "ca", where)
    return name, Settings(tuple(coordinator), ca and str(base / Path(ca).expanduser()), token,
                          token_file and str(base / Path(token_file).expanduser()), insecure)


def parse(data: Any, path: Path) -> Config:
    """The config a YAML document describes; ConfigError names the path and what is wrong."""
    config = Config(path, found=True)
    if data is None:
        return config
    if not isinstance(data, dict) or set(data) - {"current-context", "contexts"}:
        raise ConfigError(f"{path}: expected a mapping of current-context and contexts")
    current = data.get("current-context")
    if current is not None and not isinstance(current, str):
        raise ConfigError(f"{path}: current-context must be a context's name")
    entries = data.get("contexts") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: contexts must be a list")
    for index, entry in enumerate(entries):
        name, settings = _context(entry, f"{path}: contexts[{index}]", path.parent)
        if name in config.contexts:
            raise ConfigError(f"{path}: two contexts named {name!r}")
        config.contexts[name] = settings
    config.current = current
    return config


def load(path: Path) -> Config:
    """The config at ``path``; an empty one when there is no file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return Config(path)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    import yaml  # only where a config file exists: every command starts a process

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path} is not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    return parse(data, path)


def dump(config: Config) -> str:
    import yaml

    entries = []
    for name, s in config.contexts.items():
        entry: dict[str, Any] = {"name": name, "coordinator": list(s.coordinator)}
        for key, value in (("ca", s.ca), ("token", s.token), ("token-file", s.token_file), ("insecure", s.insecure)):
            if value is not None:
                entry[key] = value
        entries.append(entry)
    data: dict[str, Any] = {"current-context": config.current} if config.current else {}
    return yaml.safe_dump({**data, "contexts": entries}, sort_keys=False)


def save(config: Config) -> None:
    """Write the file 0600 (it holds tokens) in a 0700 directory, through a
    temporary file, so a crash leaves the old file or the new one."""
    path = config.path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL: a file already there (a leftover) could have a wider mode.
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(dump(config))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def read_token(path: str) -> str:
    try:
        token = Path(path).expanduser().read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror or exc}") from None
    if not token:
        raise ConfigError(f"token file {path} is empty")
    return token


def connection(flags: Settings, context: str | None, env: Mapping[str, str]) -> tuple[tuple[str, ...], rpc.ClientAuth]:
    """The coordinator addresses, in the order to try them, and the credentials to use."""
    s = resolve(flags, env, load(config_path(env)).selected(context))
    token = read_token(s.token_file) if s.token_file is not None else s.token
    if token is not None:
        try:
            rpc.check_token(token)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return s.coordinator, rpc.ClientAuth(ca=s.ca, token=token, insecure=bool(s.insecure))


# -- octoctl config -----------------------------------------------------------

def _load() -> Config:
    return load(config_path(os.environ))


@click.group("config")
def group() -> None:
    """Contexts: named coordinators with their CA and token ($OCTOBOT_CONFIG,
    else ~/.config/octobot/config.yaml)."""


@group.command("set-context")
@click.argument("name")
@click.option("--coordinator", "coordinators", multiple=True,
              help="host:port; several (repeated or comma-separated) are tried in order")
@click.option("--ca", type=click.Path(exists=True, dir_okay=False, resolve_path=True), default=None,
              help="CA certificate (PEM) that signed the coordinator's")
@click.option("--token", default=None, help="bearer token, kept in the config file")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False, resolve_path=True), default=None,
              help="file holding the bearer token, read at each use")
@click.option("--insecure/--no-insecure", default=None, help="plaintext to a coordinator off this machine")
def set_context(name: str, coordinators: tuple[str, ...], ca: str | None, token: str | None,
                token_file: str | None, insecure: bool | None) -> None:
    """Create or change a context; settings not given stay as they were."""
    if token is not None and token_file is not None:
        raise click.UsageError("give --token or --token-file, not both")
    config = _load()
    created = name not in config.contexts
    given = Settings(split_addresses(coordinators), ca, token, token_file, insecure)
    config.contexts[name] = given.over(config.contexts.get(name, Settings()))
    save(config)
    click.echo(f"context {name} {'created' if created else 'updated'}")


@group.command("use-context")
@click.argument("name")
def use_context(name: str) -> None:
    """Make a context the current one."""
    config = _load()
    config.context(name)
    config.current = name
    save(config)
    click.echo(f"current context is {name}")


def _token_shown(s: Settings) -> str | None:
    """Whether a token is set, never its value."""
    return "****" if s.token else None


@group.command("get-contexts")
@output_option
def get_contexts(output: str) -> None:
    """List contexts; * marks the current one. Tokens are never shown."""
    config = _load()
    items = list(config.contexts.items())
    data = [{"name": name, "current": name == config.current, "coordinator": list(s.coordinator), "ca": s.ca,
             "token": _token_shown(s), "token_file": s.token_file, "insecure": bool(s.insecure)} for name, s in items]
    rows = [["*" if name == config.current else "", name, ",".join(s.coordinator), s.ca,
             _token_shown(s) or (f"file {s.token_file}" if s.token_file else ""), "yes" if s.insecure else ""]
            for name, s in items]
    emit(output, data, ["CURRENT", "NAME", "COORDINATOR", "CA", "TOKEN", "INSECURE"], rows)


@group.command("current-context")
def current_context() -> None:
    """Print the current context's name."""
    config = _load()
    if config.current is None:
        raise ConfigError("no current context: choose one with `octoctl config use-context NAME`")
    click.echo(config.current)


@group.command("delete-context")
@click.argument("name")
def delete_context(name: str) -> None:
    """Delete a context (and unset it if it was the current one)."""
    config = _load()
    config.context(name)
    del config.contexts[name]
    was_current = config.current == name
    if was_current:
        config.current = None
    save(config)
    click.echo(f"context {name} deleted" + (" (there is no current context now)" if was_current else ""))
