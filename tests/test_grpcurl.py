"""The README's grpcurl examples, run as written against a real coordinator:
reflection must be enough for a stock gRPC client to call the stats API."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import octobot
from support.cluster import octoctl, wait_until
from support.processes import Processes

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_examples() -> list[list[str]]:
    """Each ``grpcurl`` command of the README's stats section, as an argument list."""
    text = README.read_text()
    block = text[text.index("`StatsService` over gRPC"):]
    block = block[block.index("```sh") + len("```sh"):block.index("```", block.index("```sh") + 5)]
    commands = re.sub(r"\\\n\s*", "", block).splitlines()
    return [shlex.split(line, comments=True) for line in commands if line.startswith("grpcurl")]


def json_objects(text: str) -> list[dict]:
    """grpcurl prints one indented JSON object per response."""
    decoder, objects, at = json.JSONDecoder(), [], 0
    while (at := text.find("{", at)) >= 0:
        obj, at = decoder.raw_decode(text, at)
        objects.append(obj)
    return objects


def test_readme_grpcurl_examples_work(procs: Processes, tmp_path: Path, key: str) -> None:
    coord = procs.coordinator(f"sqlite:///{tmp_path / 'octobot.db'}")
    node = procs.node(coord.target, "east", ["dc=us-east"])
    url = f"sqlite:///{tmp_path / 'queues.db'}"
    octoctl(coord.target, "queue", "add", key, "--backend", "sqlite", "--url", url)
    with octobot.Client(url) as client:
        client.enqueue_many(key, [octobot.Envelope.new("e2e.sleep", [0.01]) for _ in range(5)])

    def run(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
        # The README's names for a real deployment, mapped onto this test's.
        args = [a.replace("127.0.0.1:7400", coord.target).replace('"emails"', json.dumps(key))
                .replace("NODE_ID", node.node_id) for a in args]
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)

    examples = readme_examples()
    assert [a[-1].rsplit("/", 1)[-1] for a in examples] == [
        "octobot.v1.StatsService", "GetCluster", "GetQueueStats", "GetNodeStats", "QueryRange", "Watch"]
    listing, *calls, watch = examples

    out = run(listing)
    assert out.returncode == 0, out.stderr
    assert {"octobot.v1.StatsService.GetCluster", "octobot.v1.StatsService.Watch"} <= set(out.stdout.split())

    def succeeded(reply: dict) -> int:
        return sum(int(row.get("succeeded", 0)) for row in reply.get("queues", []))

    wait_until(lambda: succeeded(json_objects(run(calls[0]).stdout)[0]) == 5, timeout=30,
               what="the 5 tasks in GetCluster through grpcurl")
    replies = {}
    for args in calls:
        out = run(args)
        assert out.returncode == 0, f"{shlex.join(args)}: {out.stderr}"
        replies[args[-1].rsplit("/", 1)[-1]] = json_objects(out.stdout)[0]
    assert [g["group"] for g in replies["GetCluster"]["groups"]] == ["us-east"]
    assert int(replies["GetQueueStats"]["total"]["succeeded"]) == 5
    assert [q["queue"] for q in replies["GetNodeStats"]["queues"]] == [key]
    assert [s["group"] for s in replies["QueryRange"]["series"]] == ["us-east"]

    # Watch streams until interrupted: let it run for a few snapshots.
    out = run([watch[0], "-max-time", "3.5", *watch[1:]])
    snapshots = json_objects(out.stdout)
    assert len(snapshots) >= 2, out.stderr
    assert all(s["snapshot"]["queues"][0]["queue"] == key for s in snapshots)
