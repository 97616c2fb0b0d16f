"""octoctl contexts and tokens: the pure precedence rules and the config file
in-process, then `octoctl config` and `octoctl token` as real processes, the
latter against a real loopback coordinator (which takes anonymous callers as
admin and token holders as their role)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from octobot.ctl import config
from octobot.ctl.config import Config, ConfigError, Settings
from support.brokers import REDIS_URL, free_port
from support.cluster import Coordinator, one_error_line, wait_until

DEFAULT = Settings(("127.0.0.1:7400",), None, None, None, False)


# -- precedence ---------------------------------------------------------------

def test_defaults_when_nothing_is_set() -> None:
    assert config.resolve(Settings(), {}, Settings()) == DEFAULT


def test_each_setting_comes_from_the_first_source_that_has_it() -> None:
    context = Settings(("ctx:1", "ctx:2"), "ctx.pem", "ctx-token", None, True)
    env = {"OCTOBOT_COORDINATOR": "env:1", "OCTOBOT_CA": "env.pem"}
    flags = Settings(coordinator=("flag:1",))
    assert config.resolve(flags, env, context) == Settings(("flag:1",), "env.pem", None, None, True)
    assert config.resolve(Settings(), env, context) == Settings(("env:1",), "env.pem", None, None, True)
    assert config.resolve(Settings(), {}, context) == context
    # The context's token follows its own addresses only; a token given alongside goes anywhere.
    assert config.resolve(Settings(coordinator=("ctx:1", "ctx:2")), {}, context).token == "ctx-token"
    assert config.resolve(Settings(token="mine"), env, context).token == "mine"
    assert config.resolve(Settings(insecure=False), {}, context).insecure is False


def test_a_token_and_a_token_file_are_one_setting() -> None:
    """Whichever source is first for the credential gives it whole."""
    context = Settings(token_file="/ctx.token")
    assert config.resolve(Settings(), {"OCTOBOT_TOKEN": "env"}, context) == Settings(
        DEFAULT.coordinator, None, "env", None, False)
    assert config.resolve(Settings(token_file="/flag.token"), {"OCTOBOT_TOKEN": "env"}, context) == Settings(
        DEFAULT.coordinator, None, None, "/flag.token", False)
    assert config.resolve(Settings(), {}, context).token_file == "/ctx.token"


def test_empty_environment_values_count_as_unset() -> None:
    env = {"OCTOBOT_COORDINATOR": "", "OCTOBOT_TOKEN": "", "OCTOBOT_CA": ""}
    assert config.resolve(Settings(), env, Settings(("ctx:1",), token="t")) == Settings(("ctx:1",), None, "t", None,
                                                                                      False)


def test_addresses_repeat_and_comma_separate() -> None:
    assert config.split_addresses(["a:1,b:2", " c:3 ", "", "d:4,"]) == ("a:1", "b:2", "c:3", "d:4")


@pytest.mark.parametrize(("env", "path"), [
    ({"OCTOBOT_CONFIG": "/x/o.yaml", "XDG_CONFIG_HOME": "/xdg"}, "/x/o.yaml"),
    ({"XDG_CONFIG_HOME": "/xdg"}, "/xdg/octobot/config.yaml"),
    ({}, "~/.config/octobot/config.yaml"),
])
def test_config_path(env: dict[str, str], path: str) -> None:
    assert config.config_path(env) == Path(path).expanduser()


def test_selected_context() -> None:
    cfg = Config(Path("/c.yaml"), {"a": Settings(("a:1",)), "b": Settings(("b:1",))}, current="a", found=True)
    assert cfg.selected(None) == Settings(("a:1",))
    assert cfg.selected("b") == Settings(("b:1",))
    assert Config(Path("/c.yaml")).selected(None) == Settings()
    with pytest.raises(ConfigError, match="no context named 'ghost' in /c.yaml"):
        cfg.selected("ghost")
    with pytest.raises(ConfigError, match="does not exist"):
        Config(Path("/c.yaml")).selected("ghost")


# -- the file -----------------------------------------------------------------

def test_saved_file_is_0600_in_a_0700_directory_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "home" / "octobot" / "config.yaml"
    cfg = Config(path, {"prod": Settings(("a:1", "b:2"), "/ca.pem", "s3cret", None, True),
                        "dev": Settings(("127.0.0.1:7400",), token_file="/dev.token")}, current="prod")
    config.save(cfg)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = config.load(path)
    assert (loaded.contexts, loaded.current, list(loaded.contexts)) == (cfg.contexts, "prod", ["prod", "dev"])
    path.chmod(0o644)  # a file someone widened is narrowed again on the next write
    config.save(loaded)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]


def test_missing_file_is_an_empty_config(tmp_path: Path) -> None:
    cfg = config.load(tmp_path / "none.yaml")
    assert (cfg.contexts, cfg.current, cfg.found) == ({}, None, False)


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("contexts:\n- {name: a, coordinator: ['h:1'], ca: certs/ca.pem, token-file: a.token}\n")
    a = config.load(path).contexts["a"]
    assert (a.ca, a.token_file) == (str(tmp_path / "certs/ca.pem"), str(tmp_path / "a.token"))


@pytest.mark.parametrize(("text", "error"), [
    ("[1, 2]", "expected a mapping"),
    ("kind: Config\n", "expected a mapping"),
    ("contexts: {a: 1}\n", "contexts must be a list"),
    ("contexts: [{coordinator: ['h:1']}]\n", "needs a name"),
    ("contexts: [{name: a, coordinator: 'h:1'}]\n", "coordinator must be a list"),
    ("contexts: [{name: a, tokenfile: x}]\n", "unknown key 'tokenfile'"),
    ("contexts: [{name: a, token: t, token-file: f}]\n", "not both"),
    ("contexts: [{name: a, insecure: 'yes'}]\n", "insecure must be true or false"),
    ("contexts: [{name: a}, {name: a}]\n", "two contexts named 'a'"),
    ("current-context: [a]\n", "current-context must be"),
    ("contexts: [\n", "not valid YAML at line 2"),
])
def test_invalid_files_are_one_line_usage_errors(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert error in info.value.message and str(path) in info.value.message
    assert "\n" not in info.value.message and info.value.exit_code == 2


def test_connection_reads_the_token_file(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("s3cret\n")
    env = {"OCTOBOT_CONFIG": str(tmp_path / "none.yaml")}
    targets, auth = config.connection(Settings(token_file=str(tmp_path / "t")), None, env)
    assert (targets, auth.token, auth.metadata()) == (DEFAULT.coordinator, "s3cret",
                                                       (("authorization", "Bearer s3cret"),))
    with pytest.raises(ConfigError, match="cannot read token file"):
        config.connection(Settings(token_file=str(tmp_path / "missing")), None, env)
    (tmp_path / "t").write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        config.connection(Settings(token_file=str(tmp_path / "t")), None, env)


# -- octoctl config, as a process -----------------------------------------------

@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return tmp_path / "home" / "octobot" / "config.yaml"


def ctl(cfg: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """octoctl with ``cfg`` as its config file and no other OCTOBOT_ settings from this environment."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OCTOBOT_")}
    return subprocess.run([sys.executable, "-m", "octobot.ctl.main", *args], capture_output=True, text=True,
                          timeout=60, env={**clean, "OCTOBOT_CONFIG": str(cfg), **(env or {})})


def ok(cfg: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = ctl(cfg, *args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_config_commands(cfg: Path, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not read here")
    ok(cfg, "config", "set-context", "prod", "--coordinator", "a.example:7400",
       "--coordinator", "b.example:7400,c.example:7400", "--token", "s3cret-value")
    assert ok(cfg, "config", "set-context", "prod", "--ca", str(tmp_path / "ca.pem"), "--insecure") \
        == "context prod updated\n"
    ok(cfg, "config", "set-context", "dev", "--coordinator", "127.0.0.1:7400")
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600 and stat.S_IMODE(cfg.parent.stat().st_mode) == 0o700

    ok(cfg, "config", "use-context", "prod")
    assert ok(cfg, "config", "current-context") == "prod\n"
    table = ok(cfg, "config", "get-contexts")
    assert "s3cret" not in table
    assert re.search(r"^\*\s+prod\s+a\.example:7400,b\.example:7400,c\.example:7400\s.*\*\*\*\*\s+yes", table, re.M)
    assert re.search(r"^\s+dev\s+127\.0\.0\.1:7400", table, re.M)
    listed = json.loads(ok(cfg, "config", "get-contexts", "-o", "json"))
    assert "s3cret" not in json.dumps(listed)
    assert listed[0] == {"name": "prod", "current": True, "insecure": True, "token": "****", "token_file": None,
                         "coordinator": ["a.example:7400", "b.example:7400", "c.example:7400"],
                         "ca": str(tmp_path / "ca.pem")}
    assert (listed[1]["name"], listed[1]["current"], listed[1]["token"]) == ("dev", False, None)

    # A token file replaces the token; the stored context keeps everything else.
    (tmp_path / "prod.token").write_text("from-file\n")
    ok(cfg, "config", "set-context", "prod", "--token-file", str(tmp_path / "prod.token"), "--no-insecure")
    prod = config.load(cfg).contexts["prod"]
    assert prod == Settings(("a.example:7400", "b.example:7400", "c.example:7400"), str(tmp_path / "ca.pem"),
                            None, str(tmp_path / "prod.token"), False)

    ok(cfg, "config", "delete-context", "prod")
    result = ctl(cfg, "config", "current-context")
    assert result.returncode == 2 and "no current context" in one_error_line(result)
    assert list(config.load(cfg).contexts) == ["dev"]


@pytest.mark.parametrize("args", [["config", "use-context", "ghost"], ["config", "delete-context", "ghost"],
                                  ["--context", "ghost", "queue", "list"]])
def test_unknown_context_exits_2(cfg: Path, args: list[str]) -> None:
    ok(cfg, "config", "set-context", "dev")
    result = ctl(cfg, *args)
    assert result.returncode == 2
    assert "no context named 'ghost'" in one_error_line(result)


def test_invalid_config_file_exits_2_naming_it(cfg: Path) -> None:
    cfg.parent.mkdir(parents=True)
    cfg.write_text("contexts: [{name: a, coordinator: 'h:1'}]\n")
    for args in (["queue", "list"], ["config", "get-contexts"]):
        result = ctl(cfg, *args)
        assert result.returncode == 2
        assert str(cfg) in one_error_line(result)


@pytest.mark.parametrize("args", [["--token", "t", "--token-file", "f", "queue", "list"],
                                  ["--token-file", "/no/such/file", "queue", "list"],
                                  ["--ca", "/no/such/ca.pem", "queue", "list"],
                                  ["token", "create", "ci", "--role", "viewer", "--expires", "3x"],
                                  ["token", "create", "ci", "--role", "root"]])
def test_bad_credentials_and_flags_exit_2_before_any_call(cfg: Path, args: list[str]) -> None:
    result = ctl(cfg, *args)
    assert result.returncode == 2
    one_error_line(result)


# -- against a coordinator ------------------------------------------------------

def test_a_context_reaches_the_first_address_that_answers(cfg: Path, coord: Coordinator) -> None:
    dead = f"127.0.0.1:{free_port()}"
    ok(cfg, "config", "set-context", "local", "--coordinator", f"{dead},{coord.target}")
    ok(cfg, "config", "set-context", "gone", "--coordinator", dead, "--coordinator", dead)
    ok(cfg, "config", "use-context", "local")
    ok(cfg, "queue", "add", "q", "--backend", "redis", "--url", REDIS_URL)
    assert [q["name"] for q in json.loads(ok(cfg, "--context", "local", "queue", "list", "-o", "json"))] == ["q"]

    result = ctl(cfg, "--context", "gone", "queue", "list")
    assert result.returncode == 3
    assert f"cannot reach any coordinator of {dead}, {dead}" in one_error_line(result)


def test_flag_beats_environment_beats_context(cfg: Path, coord: Coordinator) -> None:
    dead = f"127.0.0.1:{free_port()}"
    ok(cfg, "config", "set-context", "local", "--coordinator", coord.target)
    ok(cfg, "config", "use-context", "local")
    result = ctl(cfg, "queue", "list", env={"OCTOBOT_COORDINATOR": dead})
    assert result.returncode == 3 and dead in one_error_line(result)
    ok(cfg, "--coordinator", coord.target, "queue", "list", env={"OCTOBOT_COORDINATOR": dead})


def test_tokens_end_to_end(cfg: Path, coord: Coordinator, tmp_path: Path) -> None:
    ok(cfg, "config", "set-context", "admin", "--coordinator", coord.target)
    ok(cfg, "config", "use-context", "admin")

    created = ctl(cfg, "token", "create", "ci", "--role", "viewer", "--expires", "30d")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert created.stdout == secret + "\n" and re.fullmatch(r"\S{20,}", secret)  # alone on its line, for $(...)
    assert "ci" in created.stderr and secret not in created.stderr

    as_json = json.loads(ok(cfg, "token", "create", "ops", "--role", "operator", "-o", "json"))
    assert set(as_json) == {"name", "role", "expires_at", "secret"}
    assert (as_json["name"], as_json["role"], as_json["expires_at"]) == ("ops", "operator", None)

    listed = {t["name"]: t for t in json.loads(ok(cfg, "token", "list", "-o", "json"))}
    assert (listed["ci"]["role"], listed["ops"]["role"]) == ("viewer", "operator")
    assert listed["ci"]["expires_at"] and listed["ops"]["expires_at"] is None
    assert secret not in ok(cfg, "token", "list")
    assert re.search(r"^ci\s+viewer\s+\S+\s+\S+\s+never", ok(cfg, "token", "list"), re.M)

    # The viewer's token, from a context's token file: it may read, not change.
    (tmp_path / "ci.token").write_text(secret + "\n")
    ok(cfg, "config", "set-context", "ci", "--coordinator", coord.target, "--token-file", str(tmp_path / "ci.token"))
    ok(cfg, "--context", "ci", "queue", "list")
    refused = ctl(cfg, "--context", "ci", "queue", "add", "q", "--backend", "redis", "--url", REDIS_URL)
    assert refused.returncode == 1
    assert "permission denied" in one_error_line(refused)
    bad = ctl(cfg, "--token", "not-a-token", "queue", "list")
    assert bad.returncode == 1
    one_error_line(bad)

    assert ok(cfg, "token", "revoke", "ci") == "token ci revoked\n"
    assert "ci" not in {t["name"] for t in json.loads(ok(cfg, "token", "list", "-o", "json"))}
    revoked = wait_until(lambda: (r := ctl(cfg, "--context", "ci", "queue", "list")).returncode == 1 and r,
                         timeout=5, what="the revoked token to be refused")
    one_error_line(revoked)
    again = ctl(cfg, "token", "revoke", "ci")
    assert again.returncode == 1 and "ci" in one_error_line(again)
