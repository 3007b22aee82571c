"""Issue 13 item 13: `make demo` installs only what the agent needs; `make test` adds the extras."""

from __future__ import annotations

import ast
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def dry_run(target: str, venv: Path) -> str:
    r = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


def pip_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "pip install" in line]


def test_demo_installs_the_runtime_only_and_test_the_extras(tmp_path: Path) -> None:
    fresh = tmp_path / "venv"  # a clean clone: no venv, no stamps
    (demo,) = pip_lines(dry_run("demo", fresh))
    assert demo.rstrip().endswith("-e .") and "[test]" not in demo
    (test,) = pip_lines(dry_run("test", fresh))
    assert '-e ".[test]"' in test
    # the same .venv serves both: after `make test`, `make demo` installs nothing more
    (fresh / "bin").mkdir(parents=True)
    for stamp in ("python", ".installed-test", ".installed-runtime"):
        (fresh / "bin" / stamp).touch()
    assert pip_lines(dry_run("demo", fresh)) == []


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
    return names


def test_the_agent_imports_no_test_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    test_only = {
        "pytest",
        "pytest_timeout",
        "hypothesis",
        "jsonschema",
        "motmetrics",
    }
    assert {
        d.split(">")[0].split("[")[0].replace("-", "_")
        for d in project["optional-dependencies"]["test"]
    } >= test_only
    found = []
    for path in (ROOT / "agent").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [
                f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in test_only
            ]
    assert found == []
    # cryptography is the [operator] extra: only the operator's certificate issuing may import it
    operator = [p.relative_to(ROOT).as_posix() for p in (ROOT / "agent").rglob("*.py")
                if any(n.split(".")[0] == "cryptography" for n in _imports(p))]
    assert operator == ["agent/central/certs.py"]
    assert "cryptography>=42" in project["optional-dependencies"]["operator"]


def test_the_readme_first_page_walks_a_technician_through_in_order() -> None:
    """Done-when of issue 13: the first page says, in order, what a technician does on a new
    machine and what each command prints when it succeeds."""
    readme = (ROOT / "README.md").read_text()
    after = readme.split("## A technician's first hour on a new machine", 1)[1]
    section = after.split("\n## ", 1)[0]
    steps = [
        "make demo",
        "make test",
        "edge-agent keygen",
        "registry add",
        "models fetch",
        "privacy-report",
        "edge-agent run",
    ]
    where = [section.find(step) for step in steps]
    assert -1 not in where and where == sorted(where), dict(zip(steps, where))
    for printed in (
        "verified: 37 ok, 0 bad",
        "passed",
        '"device_id": "cam-017"',
        "enrolled cam-017",
        "ok, checked",
        "privacy manifest v1 for device cam-017",
        "frames: N",
    ):
        assert printed in section, printed
    assert readme.index("## A technician's first hour") < readme.index("## Commands")
