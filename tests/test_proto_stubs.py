"""The committed gRPC stubs (octobot/v1, octobot/internal/v1) match what proto/ generates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from octobot.tools import gen_proto


def test_gen_proto_check_passes() -> None:
    result = subprocess.run([sys.executable, "-m", "octobot.tools.gen_proto", "--check"],
                            capture_output=True, text=True, timeout=60, cwd=gen_proto.ROOT)
    assert result.returncode == 0, f"stale stubs; run `python -m octobot.tools.gen_proto`\n{result.stdout}{result.stderr}"
    assert "stale" not in result.stdout


def test_generated_files_equal_committed(tmp_path: Path) -> None:
    fresh = gen_proto.generate(tmp_path)
    protos = sorted(p.relative_to(gen_proto.PROTO_DIR).with_suffix("") for p in gen_proto.PROTO_DIR.rglob("*.proto"))
    assert protos, "no .proto files found"
    # Three files per .proto, beside it: messages, their type stubs and the gRPC service stubs.
    expected = sorted(p.with_name(p.name + suffix) for p in protos for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"))
    assert fresh == expected
    committed = sorted(p.relative_to(gen_proto.ROOT) for package in gen_proto.PACKAGES
                       for p in (gen_proto.ROOT / "octobot" / package).glob("*_pb2*.py*"))
    assert committed == expected, "octobot/ has stubs with no .proto, or lacks some"
    for f in fresh:
        assert (tmp_path / f).read_bytes() == (gen_proto.ROOT / f).read_bytes(), f"{f} is stale"
