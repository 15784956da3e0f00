"""Generate the Python gRPC stubs trafex needs, at build time.

Two sets, both written under ``trafex/_gen/`` (git-ignored, never committed):

* ``trafex._gen.gobgp``: GoBGP 3.x's API (package ``apipb``), from the ``.proto`` files
  that Debian's ``golang-github-osrg-gobgp-dev`` installs, so the stubs always match the
  ``gobgpd`` of the same Debian release.
* ``trafex._gen.trafex.v1``: trafex's own API, from ``proto/trafex/v1/*.proto``.

protoc's Python output imports sibling modules as top-level modules (``import
gobgp_pb2``); the generated files are rewritten to relative imports so that they work
as sub-modules of the installed ``trafex`` package.

Usage: ``python gobgp/gen_stubs.py [--gobgp-proto-dir DIR]``. Exits non-zero with one
line naming the missing package when the inputs are not installed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GOBGP_PROTO_DIR = Path("/usr/share/gocode/src/github.com/osrg/gobgp/api")
GOBGP_PROTOS = ("gobgp.proto", "attribute.proto", "capability.proto")
OUT = ROOT / "trafex" / "_gen"

_SIBLING_IMPORT = re.compile(r"^import (\w+_pb2) as (\w+)$", re.MULTILINE)
_OWN_IMPORT = re.compile(r"^from trafex\.v1 import (\w+_pb2) as (\w+)$", re.MULTILINE)


def _protoc(args: list[str]) -> None:
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError:
        sys.exit("gen_stubs: grpcio-tools is not installed in this Python: run 'make setup'")
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    code = protoc.main(["protoc", f"-I{include}", *args])
    if code != 0:
        sys.exit(f"gen_stubs: protoc failed ({code}) on {args[-1]}")


def _relativise(directory: Path, pattern: re.Pattern[str]) -> None:
    for path in directory.glob("*_pb2*.py*"):
        text = path.read_text()
        new = pattern.sub(r"from . import \1 as \2", text)
        if new != text:
            path.write_text(new)


def _package(directory: Path, doc: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "__init__.py").write_text(f'"""{doc} (generated, do not edit)."""\n')


def generate(gobgp_proto_dir: Path) -> None:
    missing = [p for p in GOBGP_PROTOS if not (gobgp_proto_dir / p).is_file()]
    if missing:
        sys.exit(
            f"gen_stubs: GoBGP's API protos are missing in {gobgp_proto_dir} "
            f"({', '.join(missing)}): install the Debian package "
            "'golang-github-osrg-gobgp-dev' (apt-get install golang-github-osrg-gobgp-dev)"
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="gen_stubs.", dir=OUT.parent))
    try:
        _package(staging, "Generated gRPC stubs")
        gobgp_out = staging / "gobgp"
        _package(gobgp_out, "GoBGP 3.x API stubs (apipb)")
        _protoc(
            [
                f"-I{gobgp_proto_dir}",
                f"--python_out={gobgp_out}",
                f"--pyi_out={gobgp_out}",
                f"--grpc_python_out={gobgp_out}",
                *[str(gobgp_proto_dir / p) for p in GOBGP_PROTOS],
            ]
        )
        _relativise(gobgp_out, _SIBLING_IMPORT)

        own_dir = ROOT / "proto"
        own_protos = sorted((own_dir / "trafex" / "v1").glob("*.proto"))
        _package(staging / "trafex", "trafex API stubs")
        own_out = staging / "trafex" / "v1"
        _package(own_out, "trafex.v1 API stubs")
        # protoc mirrors the proto path under the output dir: generate into a scratch dir
        # and move trafex/v1 into place.
        scratch = staging / "_scratch"
        scratch.mkdir()
        _protoc(
            [
                f"-I{own_dir}",
                f"--python_out={scratch}",
                f"--pyi_out={scratch}",
                f"--grpc_python_out={scratch}",
                *[str(p) for p in own_protos],
            ]
        )
        for path in (scratch / "trafex" / "v1").iterdir():
            shutil.move(str(path), own_out / path.name)
        shutil.rmtree(scratch)
        _relativise(own_out, _OWN_IMPORT)
        (gobgp_out / "SOURCE").write_text(f"{gobgp_proto_dir}\n")

        if OUT.exists():
            shutil.rmtree(OUT)
        os.replace(staging, OUT)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gobgp-proto-dir", type=Path, default=DEFAULT_GOBGP_PROTO_DIR)
    args = parser.parse_args()
    generate(args.gobgp_proto_dir)
    print(f"gen_stubs: wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
