"""Generate the Python gRPC stubs from ``protos/**/*.proto`` into ``serving/grpc/gen/``.

Usage: ``python protos/build.py`` (the Makefile runs it before the tests; it is idempotent and
regenerates only when a ``.proto`` is newer than its stubs, or with ``--force``).

Why the post-step: protoc names generated modules after the proto package, so
``kgqa/v1/qa.proto`` imports its messages as ``from kgqa.v1 import qa_pb2``. ``kgqa`` is also
our composition-root package, so putting the output folder on ``sys.path`` cannot work (the real
``kgqa`` would shadow it). Instead the stubs go to ``serving/grpc/gen/kgqa/v1/`` and the
cross-module imports are rewritten to *relative* ones (``from . import qa_pb2``), the same
rewrite that tools such as protoletariat do. The stubs are then the ordinary package
``serving.grpc.gen.kgqa.v1`` while the descriptors keep their proto names (``kgqa/v1/qa.proto``,
package ``kgqa.v1``), which is what reflection and grpcurl show. The generated folder is
gitignored and never edited by hand.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "protos"
OUT = ROOT / "serving" / "grpc" / "gen"

# `from kgqa.v1 import qa_pb2 as kgqa_dot_v1_dot_qa__pb2` -> `from . import qa_pb2 as ...`
# (only for imports of modules that we generate ourselves; google.* imports are left alone).
_IMPORT = re.compile(r"^from ((?:\w+\.)*\w+) import (\w+_pb2(?:_grpc)?)( as \w+)?$", re.MULTILINE)


def _protos() -> list[Path]:
    return sorted(PROTO_ROOT.rglob("*.proto"))


def _outputs(proto: Path) -> list[Path]:
    rel = proto.relative_to(PROTO_ROOT).with_suffix("")
    base = OUT / rel.parent
    return [base / f"{rel.name}_pb2.py", base / f"{rel.name}_pb2.pyi", base / f"{rel.name}_pb2_grpc.py"]


def _stale(protos: list[Path]) -> bool:
    newest_input = max([p.stat().st_mtime for p in protos] + [Path(__file__).stat().st_mtime])
    outputs = [o for p in protos for o in _outputs(p)]
    return any(not o.exists() or o.stat().st_mtime < newest_input for o in outputs)


def _relativize(path: Path, own_packages: set[str]) -> None:
    """Rewrite absolute imports of sibling generated modules to relative imports."""
    package = ".".join(path.parent.relative_to(OUT).parts)

    def fix(match: re.Match[str]) -> str:
        module, name, alias = match.group(1), match.group(2), match.group(3) or ""
        if module not in own_packages:
            return match.group(0)
        if module == package:
            return f"from . import {name}{alias}"
        # Another of our proto packages: climb to the output root, then descend.
        return f"from {'.' * (package.count('.') + 2)}{module} import {name}{alias}"

    text = path.read_text(encoding="utf-8")
    path.write_text(_IMPORT.sub(fix, text), encoding="utf-8")


def build(force: bool = False) -> bool:
    """Generate the stubs; return True when files were (re)written.

    Raises:
        SystemExit: protoc reported an error (its message is printed).
    """
    from grpc_tools import protoc

    protos = _protos()
    if not protos:
        raise SystemExit(f"no .proto files under {PROTO_ROOT}")
    if not force and not _stale(protos):
        return False
    OUT.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={OUT}",
        f"--pyi_out={OUT}",
        f"--grpc_python_out={OUT}",
        *[str(p) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the message above")
    own_packages = {".".join(p.relative_to(PROTO_ROOT).parent.parts) for p in protos}
    for folder in {OUT, *(o.parent for p in protos for o in _outputs(p))}:
        cur = folder
        while cur != OUT.parent:
            (cur / "__init__.py").touch(exist_ok=True)
            cur = cur.parent
    for proto in protos:
        for out in _outputs(proto):
            _relativize(out, own_packages)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="regenerate even when up to date")
    args = parser.parse_args(argv)
    wrote = build(force=args.force)
    print(f"gRPC stubs {'generated' if wrote else 'up to date'} in {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
