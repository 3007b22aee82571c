"""A manifest over the size a device publishes is refused where it is signed, in one line that says
what to change: `privacy-report --signed` and a replay's start alike."""

from __future__ import annotations

from pathlib import Path

from agent.protocol.enrolment import keygen
from agent.protocol.topics import MAX_MANIFEST_BYTES
from tests.helpers import cli


def many_zones(path: Path, n: int = 6) -> Path:
    text = ['[device]\nid = "cam-1"\nsite = "lab"\n[detector]\nbackend = "scripted"\nscript = "none.jsonl"\n']
    for i in range(n):
        for j in range(n):
            x0, y0, x1, y1 = i / n, j / n, (i + 1) / n - 0.001, (j + 1) / n - 0.001
            corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
            polygon = ", ".join(f"[{x:.4f}, {y:.4f}]" for x, y in corners)
            text.append(f'[[zones]]\nid = "z{i}-{j}"\npolygon = [{polygon}]\n')
    path.write_text("".join(text))
    return path


def test_an_oversized_manifest_is_never_signed(tmp_path: Path) -> None:
    cfg = many_zones(tmp_path / "many.toml")
    keygen(tmp_path / "k", "cam-1", "lab")
    r = cli("privacy-report", "--signed", "--config", str(cfg), "--state", str(tmp_path / "st"),
            "--key", str(tmp_path / "k" / "device.key"))
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1, r
    assert f"over the {MAX_MANIFEST_BYTES} a device publishes: fewer zones and lines" in r.stderr
    # the text report still shows what was asked for (nothing signed, nothing sent)
    ok = cli("privacy-report", "--config", str(cfg), "--state", str(tmp_path / "st"))
    assert ok.returncode == 0 and "z5-5 (zone)" in ok.stdout
