"""Secrets in broker URLs: references resolved only on nodes and producers, and
literal passwords redacted everywhere else. Unit tests of octobot.secrets and
its users, then real processes: a coordinator and a node on a Redis user with
a password, whose outputs, logs and files are searched for it."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import select

import octobot
from support.cluster import octoctl, octoctl_json, wait_until
from support.processes import Processes
from octobot import backends, queue_file, queue_specs
from octobot.coordinator.models import AuditRow
from octobot.coordinator.store import Store
from octobot.node.agent import Agent
from octobot.node.state import StateDir
from octobot.secrets import (SecretSources, keep_stored_secret, normalized, quote_keeping_references, redact_spec, redact_text,
                             redact_url, refuse_redacted, resolve)
from octobot.v1 import queue_pb2


def _normalize(url: str) -> str:
    return normalized(url, backends.backend_class(backends.backend_for_url(url)).normalize_url)


# -- redact_url / redact_text ------------------------------------------------------


@pytest.mark.parametrize("url, redacted", [
    ("redis://:pw@h:6379/0", "redis://:****@h:6379/0"),
    ("amqp://user:pw@h/vhost", "amqp://user:****@h/vhost"),
    ("amqps://user:p%40ss%2Fx@h:5671/%2F?heartbeat=30", "amqps://user:****@h:5671/%2F?heartbeat=30"),
    ("redis://h:6379/0?password=pw&db=1", "redis://h:6379/0?password=****&db=1"),
    ("amqp://h/?PASS=a&sasl_password=b&token=c&client_secret=d&heartbeat=5",
     "amqp://h/?PASS=****&sasl_password=****&token=****&client_secret=****&heartbeat=5"),
    ("redis://u:${env:REDIS_PW}@h:6379/0", "redis://u:${env:REDIS_PW}@h:6379/0"),
    ("redis://:${file:/run/secrets/redis}@h:6379/0", "redis://:${file:/run/secrets/redis}@h:6379/0"),
    ("redis://h/0?password=${env:PW}", "redis://h/0?password=${env:PW}"),
    ("redis://u:pre${env:PW}@h/0", "redis://u:****@h/0"),  # a literal part is a secret
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://user@h/0", "redis://user@h/0"),
    ("amqp://user:@h/", "amqp://user:@h/"),
    ("sqlite:////var/lib/q.db", "sqlite:////var/lib/q.db"),
    ("beanstalk://h:11300", "beanstalk://h:11300"),
    ("redis://:****@h:6379/0", "redis://:****@h:6379/0"),
    ("not a url", "not a url"),
    ("", ""),
])
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_redact_text_finds_every_url() -> None:
    line = "queue a started: redis redis://app:S3cret@h:6379/0, b: amqp://u:Hunter2@mq/%2F (and ${env:X})"
    assert redact_text(line) == ("queue a started: redis redis://app:****@h:6379/0, b: amqp://u:****@mq/%2F "
                                 "(and ${env:X})")
    detail = json.dumps({"after": {"url": "redis://:S3cret@h/0"}, "before": {"url": "redis://:${env:PW}@h/0"}})
    assert json.loads(redact_text(detail)) == {"after": {"url": "redis://:****@h/0"},
                                               "before": {"url": "redis://:${env:PW}@h/0"}}
    assert redact_text(repr(["amqp://u:S3cret@h/", "x@y"])) == "['amqp://u:****@h/', 'x@y']"
    assert redact_text("Error 111 connecting to 127.0.0.1:6379. Connection refused.") == \
        "Error 111 connecting to 127.0.0.1:6379. Connection refused."


def test_redact_spec_leaves_the_original() -> None:
    spec = queue_pb2.QueueSpec(name="q", backend="redis", url="redis://:pw@h/0", concurrency=3)
    out = redact_spec(spec)
    assert (out.url, out.concurrency, spec.url) == ("redis://:****@h/0", 3, "redis://:pw@h/0")


# -- resolve ------------------------------------------------------------------------


def test_resolve_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTO_TEST_PW", "p@ss/w:rd")
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    assert resolve("redis://u:${env:OCTO_TEST_PW}@h/0") == "redis://u:p%40ss%2Fw%3Ard@h/0"
    assert resolve(f"amqp://u:${{file:{secret}}}@h/%2F") == "amqp://u:from-file@h/%2F"
    assert resolve("redis://h:6379/0") == "redis://h:6379/0"


@pytest.mark.parametrize("url, message", [
    ("redis://:${env:OCTO_SURELY_UNSET}@h/0", "cannot resolve ${env:OCTO_SURELY_UNSET}: environment variable "
                                              "OCTO_SURELY_UNSET is not set"),
    ("redis://:${file:/nonexistent/octo-pw}@h/0", "cannot resolve ${file:/nonexistent/octo-pw}: No such file or "
                                                  "directory"),
    ("redis://:${foo}@h/0", "bad reference '${foo}' in URL: use ${env:NAME} or ${file:/absolute/path}"),
    ("redis://:${file:relative}@h/0", "bad reference '${file:relative}'"),
    ("redis://:${env:PW@h/0?password=S3cret", "unclosed reference '${env:PW' in URL"),
])
def test_resolve_errors_name_the_reference(url: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        resolve(url)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_resolve_error_never_shows_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTO_TEST_PW", "VisibleSecret")
    with pytest.raises(ValueError) as info:
        resolve(f"redis://:${{env:OCTO_TEST_PW}}@h/0?token=${{file:{tmp_path}/missing}}")
    assert "VisibleSecret" not in str(info.value) and "missing" in str(info.value)


# -- validation without resolving -----------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("redis://:${file:/etc/octo/redis}@h:6379/0", "redis://:${file:/etc/octo/redis}@h:6379/0"),
    ("amqp://u:${env:MQ_PW}@h:5672/%2F?heartbeat=30", "amqp://u:${env:MQ_PW}@h:5672/%2F?heartbeat=30"),
])
def test_normalized_keeps_references(url: str, expected: str) -> None:
    assert _normalize(url) == expected


@pytest.mark.parametrize("url", ["beanstalk://${env:BEANSTALK_HOST}:11300", "redis://h:${env:PORT}/0",
                                 "redis://h:6379/${file:/etc/octo/db}", "amqp://u:p@h/?x=${env:X}"])
def test_references_only_in_user_or_password(url: str) -> None:
    """Resolved anywhere else, a value would come back in a parse error (or go
    out as a DNS query): whoever may set a URL would read the node's secrets."""
    with pytest.raises(ValueError, match="only in the URL's user or password"):
        _normalize(url)
    with pytest.raises(ValueError, match="only in the URL's user or password"):
        resolve(url)


def test_normalized_errors_show_references_not_secrets() -> None:
    with pytest.raises(ValueError, match=r"takes only a host and a port"):
        _normalize("beanstalk://${env:H}@h:11300")  # beanstalk has no userinfo
    # A backend's normalize_url that drops a part must not drop a reference silently.
    with pytest.raises(ValueError, match=r"\$\{env:T\} is in a part of URL 'x://\$\{env:T\}@h/'"):
        normalized("x://${env:T}@h/", lambda url: url.partition("@")[2])
    with pytest.raises(ValueError) as info:
        _normalize("amqp://u:S3cret@h:notaport/${env:PW}")
    assert "S3cret" not in str(info.value)
    with pytest.raises(ValueError) as info:
        _normalize("amqp://u:${env:PW}@h:notaport/")
    assert "amqp://u:${env:PW}@h:notaport/" in str(info.value)
    with pytest.raises(ValueError) as info:
        _normalize("redis://:pa/ss@h:6379/0")  # must be percent-encoded; the error quotes none of it
    assert "pa/ss" not in str(info.value) and "%2F" in str(info.value)
    with pytest.raises(ValueError, match="bad reference"):
        _normalize("redis://:${nope}@h/0")


def test_validate_accepts_references() -> None:
    spec = queue_pb2.QueueSpec(name="q", backend="amqp", url="amqp://u:${file:/run/secrets/mq}@h:5672/%2F")
    assert queue_specs.validate(queue_specs.with_defaults(spec)).url == spec.url
    with pytest.raises(queue_specs.SpecError, match="bad reference") as info:
        queue_specs.validate(queue_specs.with_defaults(queue_pb2.QueueSpec(name="q", backend="redis",
                                                                          url="redis://:${x}@h/0")))
    assert info.value.field == "url"


# -- the stored secret --------------------------------------------------------------


def test_keep_stored_secret() -> None:
    stored = "redis://app:S3cret@h:6379/0"
    assert keep_stored_secret("redis://app:****@h:6379/0", stored) == stored
    assert keep_stored_secret("redis://app:New@h:6379/0", stored) == "redis://app:New@h:6379/0"
    assert keep_stored_secret("redis://app:${env:PW}@h:6379/0", stored) == "redis://app:${env:PW}@h:6379/0"
    assert keep_stored_secret("redis://h:6379/0", "redis://h:6379/0") == "redis://h:6379/0"
    with pytest.raises(ValueError, match=r"carries a redacted password \(\*\*\*\*\): give the password or a "
                                         r"\$\{env:NAME\} reference"):
        keep_stored_secret("redis://app:****@other:6379/0", stored)
    with pytest.raises(ValueError, match="redacted password"):
        refuse_redacted("redis://h/0?password=****")
    assert refuse_redacted("redis://h/0") == "redis://h/0"


def _spec(name: str, url: str, **fields: object) -> queue_pb2.QueueSpec:
    return queue_specs.validate(queue_specs.with_defaults(queue_pb2.QueueSpec(name=name, backend="redis", url=url,
                                                                              **fields)))


def test_diff_and_update_keep_the_stored_secret() -> None:
    stored = _spec("q", "redis://app:S3cret@h:6379/0")
    assert queue_specs.diff([stored], [_spec("q", "redis://app:****@h:6379/0")], prune=False) == []
    [change] = queue_specs.diff([stored], [_spec("q", "redis://app:****@h:6379/0", concurrency=9)], prune=False)
    assert list(change.fields) == ["concurrency"] and change.after.url == stored.url
    with pytest.raises(queue_specs.SpecError, match="queue 'new': .* redacted password"):
        queue_specs.diff([stored], [_spec("new", "redis://app:****@h:6379/0")], prune=False)
    merged, changes = queue_specs.merge_update(stored, queue_pb2.QueueSpec(url="redis://app:****@h:6379/0"), ["url"])
    assert merged.url == stored.url and changes == {"url": stored.url}
    with pytest.raises(ValueError, match="redacted password"):
        queue_specs.merge_update(stored, queue_pb2.QueueSpec(url="redis://app:****@elsewhere/0"), ["url"])


def test_audit_is_redacted(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'octobot.db'}")
    try:
        store.create_queue(_spec("q", "redis://app:S3cret@h:6379/0"), "tester")
        with store._tx() as session:  # an entry written before redaction existed
            session.add(AuditRow(at=0.0, actor="old", action="queue.create", target="old",
                                 detail=json.dumps({"url": "amqp://u:OldS3cret@h/"})))
        with store._tx() as session:
            raw = [row.detail for row in session.scalars(select(AuditRow))]
        assert "S3cret" not in raw[0] and "redis://app:****@h:6379/0" in raw[0]
        details = [e.detail for e in store.list_audit(10)]
        assert not any("S3cret" in d for d in details)
        assert "amqp://u:****@h/" in details[0]
    finally:
        store.close()


# -- queue files ----------------------------------------------------------------------


def test_queue_file_password_key_and_round_trip(tmp_path: Path) -> None:
    file = tmp_path / "q.yaml"
    file.write_text("queues:\n"
                    "  - {name: a, protocol: Redis, host: h, username: app, password: '${env:REDIS_PW}'}\n"
                    "  - {name: b, protocol: AMQP, host: mq, username: app, password: 'p@ss/${env:SUFFIX}'}\n")
    a, b = queue_file.load(file)
    assert a.url == "redis://app:${env:REDIS_PW}@h:6379/0"
    assert b.url == "amqp://app:p%40ss%2F${env:SUFFIX}@mq:5672/%2F"
    assert quote_keeping_references("${file:/a b}x y") == "${file:/a b}x%20y"

    # What `queue list -o yaml` writes (redacted) applies as "unchanged".
    stored = _spec("q", "redis://app:S3cret@h:6379/0", concurrency=7)
    file.write_text(queue_file.dump([redact_spec(stored)]))
    assert "S3cret" not in file.read_text()
    assert queue_specs.diff([stored], queue_file.load(file), prune=True) == []


# -- logs ---------------------------------------------------------------------------


def test_setup_logging_redacts_messages_and_tracebacks() -> None:
    program = (
        "import logging\n"
        "from octobot.logs import setup_logging\n"
        "setup_logging('info')\n"
        "log = logging.getLogger('octobot.test')\n"
        "log.info('queue started: %s', 'redis://app:S3cretArg@h:6379/0')\n"
        "log.warning('connecting to amqp://u:S3cretMsg@mq/ with ${env:X}: redis://u:${env:PW}@h/0')\n"
        "try:\n"
        "    raise ConnectionError('cannot reach redis://:S3cretExc@h:6379/0')\n"
        "except ConnectionError:\n"
        "    log.exception('broker failed')\n")
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30,
                         check=True).stderr
    assert "S3cret" not in out
    assert "queue started: redis://app:****@h:6379/0" in out
    assert "redis://u:${env:PW}@h/0" in out
    assert "ConnectionError: cannot reach redis://:****@h:6379/0" in out


# -- node side ------------------------------------------------------------------------


def test_state_dir_is_private(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    state.node_id()
    state.save_assignment(queue_pb2.Assignment(generation=1, queues=[
        queue_pb2.QueueSpec(name="q", backend="redis", url="redis://:pw@h/0")]))
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    for name in ("node-id", "assignment.pb"):
        assert stat.S_IMODE((tmp_path / "state" / name).stat().st_mode) == 0o600, name
    assert state.load_assignment().queues[0].url == "redis://:pw@h/0"


def test_sources_allow_only_what_the_node_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    allowed = tmp_path / "secrets"
    allowed.mkdir()
    (allowed / "pw").write_text("FileSecret")
    (tmp_path / "other").write_text("Other")
    (allowed / "link").symlink_to(tmp_path / "other")
    monkeypatch.setenv("OCTO_OK", "EnvSecret")
    monkeypatch.setenv("OCTO_NO", "Nope")
    sources = SecretSources(dirs=(str(allowed),), env=frozenset({"OCTO_OK"}))
    assert resolve(f"redis://:${{file:{allowed}/pw}}@h/0", sources) == "redis://:FileSecret@h/0"
    assert resolve("redis://:${env:OCTO_OK}@h/0", sources) == "redis://:EnvSecret@h/0"
    for url in (f"redis://:${{file:{tmp_path}/other}}@h/0", f"redis://:${{file:{allowed}/../other}}@h/0",
                f"redis://:${{file:{allowed}/link}}@h/0", "redis://:${env:OCTO_NO}@h/0"):
        with pytest.raises(ValueError, match="allow"):
            resolve(url, sources)
    with pytest.raises(ValueError, match="allow"):
        resolve("redis://:${env:OCTO_OK}@h/0", SecretSources())  # a node allows nothing unless told


def test_used_secrets_are_redacted_from_any_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OCTO_REMEMBER", "Zq9-remembered/pw")
    resolve("redis://:${env:OCTO_REMEMBER}@h/0")
    resolve("redis://:LiteralSecret9@h/0")
    text = "AUTH failed for 'Zq9-remembered/pw' (Zq9-remembered%2Fpw); port 'LiteralSecret9' is not a number"
    assert redact_text(text) == "AUTH failed for '****' (****); port '****' is not a number"


def test_unresolvable_reference_is_a_queue_error(tmp_path: Path) -> None:
    agent = Agent("test", secret_sources=SecretSources(env=frozenset({"OCTO_SURELY_UNSET"})))
    ok = queue_pb2.QueueSpec(name="ok", backend="sqlite", url=f"sqlite:///{tmp_path}/q.db", concurrency=1)
    bad = queue_pb2.QueueSpec(name="bad", backend="redis", url="redis://:${env:OCTO_SURELY_UNSET}@h:6379/0",
                              concurrency=1)
    try:
        agent.apply(queue_pb2.Assignment(generation=1, queues=[ok, bad]))
        statuses = {q.queue: q for q in agent.heartbeat().queues}
        assert statuses["ok"].workers == 1
        assert not statuses["bad"].connected
        assert statuses["bad"].error == ("cannot start: cannot resolve ${env:OCTO_SURELY_UNSET}: "
                                         "environment variable OCTO_SURELY_UNSET is not set")
        agent.apply(queue_pb2.Assignment(generation=2, queues=[ok]))
        assert [q.queue for q in agent.heartbeat().queues] == ["ok"]
    finally:
        agent.shutdown()


# -- real Redis users and processes -------------------------------------------------------


@pytest.fixture
def redis_user(redis_client: redis.Redis) -> Iterator[tuple[str, str]]:
    """A Redis ACL user with a unique password, deleted afterwards."""
    user, password = f"octo{uuid.uuid4().hex[:8]}", f"S3cretPW{uuid.uuid4().hex}"
    redis_client.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~*", "&*", "+@all")
    yield user, password
    redis_client.execute_command("ACL", "DELUSER", user)


def test_client_resolves_references(redis_user: tuple[str, str], key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    user, password = redis_user
    monkeypatch.setenv("OCTO_TEST_PW", password)
    with octobot.Client(f"redis://{user}:${{env:OCTO_TEST_PW}}@127.0.0.1:6379/0") as client:
        assert password not in client.url
        client.enqueue(key, "e2e.record", [key, 1], wait=True)
        assert client.depth(key) == 1


def _run(target: str, outputs: list[str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = octoctl(target, *args, check=check)
    outputs.append(result.stdout + result.stderr)  # not the command line: it has the password
    return result


def test_secret_appears_nowhere(procs: Processes, redis_user: tuple[str, str], key: str, redis_client: redis.Redis,
                                tmp_path: Path) -> None:
    user, password = redis_user
    wrong = f"WrongPW{uuid.uuid4().hex}"
    url = f"redis://{user}:{password}@127.0.0.1:6379/0"
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}", metrics=True)
    node = procs.node(coord.target, "s", ["dc=x"])
    t, out = coord.target, []

    _run(t, out, "queue", "add", key, "--backend", "redis", "--url", url, "--concurrency", "2")
    _run(t, out, "queue", "add", f"{key}-bad", "--backend", "redis",
         "--url", f"redis://{user}:{wrong}@127.0.0.1:6379/0")
    for fmt in ("table", "json", "yaml"):
        _run(t, out, "queue", "list", "-o", fmt)
    assert f"redis://{user}:****@127.0.0.1:6379/0" in out[-1]
    _run(t, out, "queue", "set", key, "--max-retries", "0")
    _run(t, out, "queue", "show", key)
    _run(t, out, "queue", "show", key, "-o", "json")

    # The listing's file applies as it is, and edited: the stored password stays.
    listed = _run(t, out, "queue", "list", "-o", "yaml").stdout
    (tmp_path / "same.yaml").write_text(listed)
    (tmp_path / "edited.yaml").write_text(listed.replace("concurrency: 2", "concurrency: 3"))
    assert "no changes" in _run(t, out, "apply", "-f", str(tmp_path / "same.yaml"), "--dry-run").stdout
    assert "no changes" in _run(t, out, "apply", "-f", str(tmp_path / "same.yaml")).stdout
    _run(t, out, "apply", "-f", str(tmp_path / "edited.yaml"))
    assert octoctl_json(t, "queue", "show", key)["concurrency"] == 3
    refused = _run(t, out, "queue", "set", key, "--url", f"redis://{user}:****@localhost:6379/0", check=False)
    assert refused.returncode == 1 and "redacted password" in refused.stderr
    bad_url = _run(t, out, "queue", "add", f"{key}-amqp", "--backend", "amqp",
                   "--url", f"amqp://{user}:{password}@127.0.0.1:notaport/", check=False)
    assert bad_url.returncode == 1 and f"amqp://{user}:****@127.0.0.1:notaport/" in bad_url.stderr

    # The secret is used: through the coordinator's enqueue, and by the node.
    _run(t, out, "enqueue", key, "e2e.record", "--args", json.dumps([key, 1]))
    _run(t, out, "enqueue", key, "e2e.fail", "--args", json.dumps([key]))
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 1, timeout=30, what="the task to run")
    wait_until(lambda: octoctl_json(t, "dead", "list", key), timeout=30, what="a dead letter")
    _run(t, out, "dead", "list", key)

    # A wrong password is a broker error on the node, reported without it.
    def bad_status() -> dict | None:
        queues = octoctl_json(t, "node", "show", node.node_id).get("queues", [])
        return next((q for q in queues if q["queue"] == f"{key}-bad" and q.get("error")), None)

    assert "invalid username-password" in wait_until(bad_status, timeout=30, what="the auth error")["error"]
    _run(t, out, "node", "show", node.node_id)
    _run(t, out, "node", "show", node.node_id, "-o", "json")
    _run(t, out, "node", "list")
    _run(t, out, "history")
    created = next(e for e in json.loads(_run(t, out, "history", "-o", "json").stdout)
                   if e["action"] == "queue.create" and e["target"] == key)
    assert f"redis://{user}:****@127.0.0.1:6379/0" in created["detail"]
    _run(t, out, "stats", "--window", "1m")
    _run(t, out, "stats", "-o", "json")
    with urllib.request.urlopen(coord.metrics_url, timeout=10) as resp:
        out.append(resp.read().decode())

    node.terminate()
    coord.terminate()
    logs = {p.log.name: p.output() for p in procs.started}
    assert "invalid username-password" in logs["node-s.log"], "the broker error was logged"
    state = {f.name: f.read_bytes() for f in node.state_dir.iterdir()}
    for name, text in [*((f"output {i}", o) for i, o in enumerate(out)), *logs.items(),
                       *((n, data.decode(errors="replace")) for n, data in state.items() if n != "assignment.pb")]:
        assert password not in text and wrong not in text, f"a password leaked in {name}"
    # Only the node's cached assignment holds it, so that it can restart without the
    # coordinator, readable by the node's user alone.
    assert password.encode() in state["assignment.pb"]
    assert stat.S_IMODE(node.state_dir.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in node.state_dir.iterdir()} == {0o600}


def test_references_resolve_on_nodes_only(procs: Processes, redis_user: tuple[str, str], key: str,
                                          redis_client: redis.Redis, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    user, password = redis_user
    monkeypatch.delenv("OCTO_TEST_PW", raising=False)  # the coordinator must not have it
    (tmp_path / "secrets").mkdir()
    secret_file = tmp_path / "secrets" / "redis-pw"
    secret_file.write_text(password + "\n")
    secret_file.chmod(0o600)
    env_url = f"redis://{user}:${{env:OCTO_TEST_PW}}@127.0.0.1:6379/0"
    file_url = f"redis://{user}:${{file:{secret_file}}}@127.0.0.1:6379/0"
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    node = procs.node(coord.target, "env", ["dc=x"], env={"OCTO_TEST_PW": password}, extra=(
        "--secret-env", "OCTO_TEST_PW", "--secret-env", "OCTO_SURELY_UNSET", "--secrets-dir", str(tmp_path / "secrets")))
    t = coord.target
    octoctl(t, "queue", "add", f"{key}-env", "--backend", "redis", "--url", env_url)
    octoctl(t, "queue", "add", f"{key}-file", "--backend", "redis", "--url", file_url)
    octoctl(t, "queue", "add", f"{key}-unset", "--backend", "redis",
            "--url", f"redis://{user}:${{env:OCTO_SURELY_UNSET}}@127.0.0.1:6379/0")
    # Whoever may set a URL reads no file and no variable the node's operator did not allow.
    octoctl(t, "queue", "add", f"{key}-state", "--backend", "redis",
            "--url", f"redis://{user}:${{file:{node.state_dir}/node-id}}@127.0.0.1:6379/0")
    octoctl(t, "queue", "add", f"{key}-home", "--backend", "redis", "--url", f"redis://{user}:${{env:HOME}}@127.0.0.1:6379/0")
    assert {q["url"] for q in octoctl_json(t, "queue", "list")} >= {env_url, file_url}

    # The coordinator cannot reach such a broker: it never resolves secrets.
    refused = octoctl(t, "enqueue", f"{key}-env", "e2e.record", "--args", json.dumps([key, 0]), check=False)
    assert refused.returncode == 1 and "only nodes resolve" in refused.stderr
    assert octoctl(t, "dead", "list", f"{key}-file", check=False).returncode == 1

    # A producer resolves the file reference; the node resolves both.
    with octobot.Client(file_url) as client:
        client.enqueue(f"{key}-env", "e2e.record", [key, 1])
        client.enqueue(f"{key}-file", "e2e.record", [key, 2])
    wait_until(lambda: redis_client.hlen(f"{key}:runs") == 2, timeout=30, what="both tasks to run")

    def unset_error() -> str:
        queues = octoctl_json(t, "node", "show", node.node_id).get("queues", [])
        return next((q.get("error", "") for q in queues if q["queue"] == f"{key}-unset"), "")

    assert "cannot resolve ${env:OCTO_SURELY_UNSET}" in wait_until(unset_error, what="the unresolved queue's error")

    def error_of(queue: str) -> str:
        queues = octoctl_json(t, "node", "show", node.node_id).get("queues", [])
        return next((q.get("error", "") for q in queues if q["queue"] == queue), "")

    assert "not in a directory this node allows" in wait_until(lambda: error_of(f"{key}-state"), what="state refused")
    assert "this node does not allow it" in wait_until(lambda: error_of(f"{key}-home"), what="HOME refused")
    assert node.alive()
    assert password not in coord.output() + node.output()
