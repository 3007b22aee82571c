"""Compare the agent's results on an arm64 root with the x86 reference (hw/aarch64-check.sh).

    python hw/aarch64_compare.py X86_DIR ARM_DIR SUITE

Each folder holds version.txt, python.txt, detect.json and events.jsonl from the same commands.
Passes when: the versions match; the top detection on grace_hopper has the same label and a
score within 0.01; the replay's events are the same, compared on their signed bodies without
the fields that differ by design (random id, wall-clock ts_ms); and the agent ran on the root's
Debian numpy (from /usr/lib/python3/dist-packages), not a copy pip put in the venv.
Stdlib only: it runs with any python3. Exit 0 when all hold, 1 otherwise, one line per check.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

SCORE_TOLERANCE = 0.01
VOLATILE = ("id", "ts_ms")  # a fresh random id and the wall clock: differ on every run


def top_detection(folder: Path) -> dict[str, Any] | None:
    found: list[dict[str, Any]] = json.loads((folder / "detect.json").read_text())["detections"]
    return max(found, key=lambda d: float(d["score"])) if found else None


def event_bodies(folder: Path) -> list[dict[str, Any]]:
    bodies = []
    for line in (folder / "events.jsonl").read_bytes().splitlines():
        body = json.loads(base64.b64decode(json.loads(line)["payload"]))
        bodies.append({k: v for k, v in body.items() if k not in VOLATILE})
    return bodies


def compare(x86: Path, arm: Path, suite: str) -> list[tuple[bool, str]]:
    checks: list[tuple[bool, str]] = []
    v_x86, v_arm = (p.joinpath("version.txt").read_text().strip() for p in (x86, arm))
    checks.append((v_x86 == v_arm, f"version: {v_arm!r} (x86 {v_x86!r})"))

    machine, py_version, np_version, np_file = arm.joinpath("python.txt").read_text().split()
    system_numpy = np_file.startswith("/usr/lib/python3/dist-packages/")
    checks.append((machine == "aarch64" and system_numpy,
                   f"{machine}, Python {py_version}, numpy {np_version} from {np_file}"))

    t_x86, t_arm = top_detection(x86), top_detection(arm)
    if t_x86 is None or t_arm is None:
        checks.append((False, f"top detection on grace_hopper: {t_arm} (x86 {t_x86})"))
    else:
        diff = abs(float(t_arm["score"]) - float(t_x86["score"]))
        text = (f"top detection on grace_hopper: {t_arm['label']} {t_arm['score']} "
                f"(x86 {t_x86['label']} {t_x86['score']}, |diff| {diff:.3f} <= {SCORE_TOLERANCE})")
        checks.append((t_arm["label"] == t_x86["label"] and diff <= SCORE_TOLERANCE, text))

    e_x86, e_arm = event_bodies(x86), event_bodies(arm)
    kinds = ", ".join(f"{b['type']}:{b.get('rule', '')}" for b in e_arm) or "none"
    same = e_x86 == e_arm and bool(e_x86)
    verdict = "identical bodies" if same else "DIFFERENT"
    text = f"replay events: {len(e_arm)} ({kinds}); x86 {len(e_x86)}, {verdict} without id/ts_ms"
    checks.append((same, text))
    if not same:
        for a, b in zip(e_x86 + [{}] * len(e_arm), e_arm + [{}] * len(e_x86)):
            if a != b:
                checks.append((False, f"  first difference: x86 {a} vs {suite} {b}"))
                break
    return checks


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: aarch64_compare.py X86_DIR ARM_DIR SUITE", file=sys.stderr)
        return 2
    x86, arm, suite = Path(argv[1]), Path(argv[2]), argv[3]
    try:
        checks = compare(x86, arm, suite)
    except (OSError, ValueError, KeyError) as exc:
        print(f"aarch64-check: {suite}: results unreadable: {exc}", file=sys.stderr)
        return 1
    for ok, text in checks:
        print(f"aarch64-check: {suite}: {'ok  ' if ok else 'FAIL'} {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
