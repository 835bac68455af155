"""The committed gRPC stubs against the floors declared in pyproject.toml, and gRPC kept off the HTTP-only path.

Installs nothing: reads the generated files and pyproject.toml, and imports the app in a clean subprocess.
"""
from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
STUBS = ROOT / "gateway" / "grpc"
PB2 = sorted(STUBS.glob("*_pb2.py"))
PB2_GRPC = sorted(STUBS.glob("*_pb2_grpc.py"))


def declared_floor(package: str) -> Version:
    """The `>=` bound of `package` in [project].dependencies."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [Requirement(d) for d in deps if Requirement(d).name == package]
    assert len(reqs) == 1, f"{package} must be declared once in [project].dependencies"
    floors = [Version(s.version) for s in reqs[0].specifier if s.operator == ">="]
    assert len(floors) == 1, f"{reqs[0]} must have one >= floor"
    return floors[0]


def gencode_version(path: Path) -> Version:
    """The protobuf gencode version of a _pb2.py: its header comment, which must agree with the
    arguments of its ValidateProtobufRuntimeVersion call (the check the runtime runs at import)."""
    text = path.read_text()
    comment = re.search(r"^# Protobuf Python Version: (\S+)$", text, re.M)
    assert comment, f"{path.name}: no '# Protobuf Python Version' line"
    calls = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "ValidateProtobufRuntimeVersion"]
    assert len(calls) == 1, f"{path.name}: expected one ValidateProtobufRuntimeVersion call"
    major, minor, patch, suffix = (ast.literal_eval(a) for a in calls[0].args[1:5])
    assert suffix == "", f"{path.name}: pre-release gencode {suffix!r}"
    called = Version(f"{major}.{minor}.{patch}")
    assert called == Version(comment.group(1)), f"{path.name}: header and runtime check disagree"
    return called


def grpc_generated_version(path: Path) -> Version:
    match = re.search(r"^GRPC_GENERATED_VERSION = '([^']+)'$", path.read_text(), re.M)
    assert match, f"{path.name}: no GRPC_GENERATED_VERSION"
    return Version(match.group(1))


def test_stubs_present():
    assert {p.name for p in PB2} >= {"kserve_v2_pb2.py", "tfs_apis_pb2.py", "tf_framework_pb2.py"}
    assert {p.name for p in PB2_GRPC} >= {"kserve_v2_pb2_grpc.py", "tfs_apis_pb2_grpc.py"}


@pytest.mark.parametrize("path", PB2, ids=lambda p: p.name)
def test_protobuf_floor_matches_gencode(path):
    """A runtime older than the gencode refuses to import it, so the floor is at least the gencode;
    and a floor a major version above it would shut out runtimes the stubs load on (protobuf 5.x,
    and 6.x for tritonclient[grpc])."""
    gencode, floor = gencode_version(path), declared_floor("protobuf")
    assert floor >= gencode, f"protobuf>={floor} admits runtimes older than the {path.name} gencode {gencode}"
    assert floor.major == gencode.major, f"protobuf>={floor}: raise the stubs' gencode ({gencode}) first"


@pytest.mark.parametrize("path", PB2_GRPC, ids=lambda p: p.name)
def test_grpcio_floor_matches_generated_version(path):
    """The _pb2_grpc.py raise at import on a grpcio older than the grpcio-tools that generated them."""
    generated, floor = grpc_generated_version(path), declared_floor("grpcio")
    assert floor >= generated, f"grpcio>={floor} admits versions {path.name} refuses (needs >={generated})"


def test_http_path_does_not_import_grpc():
    """`serve` without --port must start when grpcio/protobuf are missing or mismatched: the modules
    the serve path imports before loading models pull in neither grpc nor the stubs."""
    code = (
        "import json, sys\n"
        "import gateway, gateway.app, gateway.cli, gateway.model_repo\n"
        "import scheduler.config_reloader, scheduler.model_manager, scheduler.arbiter, servables.config_file\n"
        "print(json.dumps({'gateway': gateway.__file__, 'modules': sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] == 'grpc' or m.startswith('gateway.grpc'))}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(result["gateway"]).resolve().is_relative_to(ROOT), result["gateway"]
    assert result["modules"] == []
