"""Regenerate the committed gRPC stubs (octobot/v1, octobot/internal/v1) from proto/.

    python -m octobot.tools.gen_proto          # rewrite the stubs
    python -m octobot.tools.gen_proto --check  # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = ROOT / "proto"
PACKAGES = ("v1", "internal/v1")  # under octobot/, as under proto/octobot/


def generate(out_root: Path) -> list[Path]:
    """Run protoc over every .proto file, writing under out_root; return the files written."""
    from grpc_tools import protoc  # dev dependency: only needed to regenerate
    import grpc_tools

    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return sorted(p.relative_to(out_root) for package in PACKAGES
                  for p in (out_root / "octobot" / package).glob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale stubs")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        stale = [f for f in fresh if not (ROOT / f).exists() or not filecmp.cmp(Path(tmp) / f, ROOT / f, shallow=False)]
        extra = {p.relative_to(ROOT) for package in PACKAGES
                 for p in (ROOT / "octobot" / package).glob("*_pb2*.py*")} - set(fresh)
        if opts.check:
            for name in stale + sorted(extra):
                print(f"stale: {name}")
            return 1 if stale or extra else 0
        for name in extra:
            (ROOT / name).unlink()
        for f in fresh:
            (ROOT / f).write_bytes((Path(tmp) / f).read_bytes())
        print(f"wrote {len(fresh)} files under octobot/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
