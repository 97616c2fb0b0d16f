"""octoctl in process (click's CliRunner): usage errors, exit codes and
output that need no coordinator, or one that is not there. (Through
click's own runner, errors read "Error:"; octoctl's main() writes "error:",
which the tests that run the command check.)"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import octobot
from support.brokers import free_port
from octobot.ctl.main import cli


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--coordinator", f"127.0.0.1:{free_port()}", *args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(("args", "message"), [
    (("queue", "add", "q"), "--backend is required"),
    (("queue", "set", "q"), "nothing to change"),
    (("enqueue", "q"), "give either TASK or -f FILE"),
    (("dead", "retry", "q"), "give dead-letter IDs or --all"),
    (("--token", "a", "--token-file", "b", "queue", "list"), "give --token or --token-file, not both"),
    (("broker", "add", "b", "--backend", "redis", "--url", "dc=x=redis://h"), "a default URL is required"),
    (("broker", "add", "b", "--backend", "redis", "--url", "redis://a", "--url", "redis://b"), "one default URL"),
    (("queue", "add", "q", "--backend", "redis", "--priority", "high"), "'high' is not a valid integer"),
])
def test_usage_errors_exit_2_in_one_line(args: tuple[str, ...], message: str) -> None:
    code, output = _run(*args)
    assert code == 2 and message in output


def test_version() -> None:
    assert _run("--version") == (0, f"octoctl {octobot.__version__}\n")


def test_an_unreachable_coordinator_exits_3_without_a_traceback() -> None:
    code, output = _run("queue", "list")
    assert code == 3 and "Traceback" not in output
    assert "cannot reach coordinator at 127.0.0.1:" in output and output.count("\n") == 1
