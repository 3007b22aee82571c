"""The package's import rules, read from the source with ast (every import, lazy ones included).

- agent.protocol imports nothing else of agent but agent.errors (and itself);
- agent.central imports no device package;
- no device package imports agent.central.
"""

from __future__ import annotations

import ast
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "agent"
DEVICE = ("capture", "detect", "track", "rules", "delivery", "privacy", "pipeline", "assembly", "remote", "device",
          "frameloop", "setupview", "doctor")


def module_name(path: Path) -> str:
    parts = path.relative_to(AGENT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every agent module path path imports (absolute, relative and `from agent import x`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from agent import privacy`
    return {m for m in out if m.startswith("agent.")}


def top(module: str) -> str:
    """agent.x.y -> x ('' for agent itself)."""
    return module.split(".")[1] if module.count(".") else ""


def modules() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sorted(AGENT.rglob("*.py"))}


def test_the_source_tree_is_read() -> None:
    mods = modules()
    assert "agent.protocol.dsse" in mods and "agent.central.ingest.worker" in mods
    assert "agent.protocol.dsse" in mods["agent.protocol.acks"]
    assert "agent.central.store" in mods["agent.central.ingest.worker"]


def test_protocol_imports_only_errors_and_itself() -> None:
    bad = {
        (m, i) for m, deps in modules().items() if top(m) == "protocol"
        for i in deps if top(i) not in ("protocol", "errors")
    }
    assert not bad, sorted(bad)


def test_central_imports_no_device_package() -> None:
    bad = {(m, i) for m, deps in modules().items() if top(m) == "central" for i in deps if top(i) in DEVICE}
    assert not bad, sorted(bad)


def test_no_device_package_imports_central() -> None:
    bad = {(m, i) for m, deps in modules().items() if top(m) in DEVICE for i in deps if top(i) == "central"}
    assert not bad, sorted(bad)


def test_provisioning_sides_stay_apart() -> None:
    """The device's provisioning (agent.provision) never imports central, and central never imports
    it; the device side never needs `cryptography` (only the operator's certificate issuing does)."""
    mods = modules()
    bad = {(m, i) for m, deps in mods.items() if top(m) == "provision" for i in deps if top(i) == "central"}
    bad |= {(m, i) for m, deps in mods.items() if top(m) == "central" for i in deps if top(i) == "provision"}
    assert not bad, sorted(bad)
    assert "agent.provision.device" in mods
    for path in sorted((AGENT / "provision").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {n for n in names if n.split(".")[0] == "cryptography"}, path
