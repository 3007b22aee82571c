"""Footprint: peak RSS of `replay` on the real clip with the default model, and SD-card writes per event.

Peak RSS is the replay child's own high-water mark (ru_maxrss from wait4, in a fresh process).
Writes are the bytes the process hands to write()/pwrite() (/proc/self/io wchar, which counts
writes to a tmpfs too) while the publishing half appends events to a fresh state folder's outbox
(SQLite WAL, counters) at 1 event/s of simulated time and the acks delete them again as the sender
does, divided by the events; extrapolated to MB per day at 1 event/s. Measured twice: the durable
default (every event committed at once) and the Raspberry Pi profile's group-commit window
(outbox.commit_interval_s of hw/profiles/zero2w.toml); the target is checked on the latter.
Also listed: the state folder's files and what the replay wrote to them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from agent.bench import emit

RSS_TARGET_MB = 120
WRITE_TARGET_MB_DAY = 100


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clip", metavar="FILE", help="video (default: the sample clip in $EDGE_AGENT_ASSETS)")
    p.add_argument("--model-dir", metavar="DIR", help="where the default model is installed (default: "
                   "imported from $EDGE_AGENT_ASSETS/models into a temporary folder)")
    p.add_argument("--events", type=int, default=2000, help="events appended for the write measurement")
    p.add_argument("--max-frames", type=int, default=0, help="stop the replay after N frames (0: whole clip)")


def _assets() -> Path:
    return Path(os.environ.get("EDGE_AGENT_ASSETS", Path(__file__).resolve().parents[3] / "shared" / "assets"))


def wchar() -> int:
    """Bytes this process passed to write-like system calls so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no wchar")


def writes_per_event(folder: Path, events: int, commit_interval_s: float = 0.0,
                     delete_interval_s: float | None = None) -> dict[str, Any]:
    """Append `events` line crossings through the real publishing half at 1 event/s of simulated
    time, and ack each committed row at once as the sender does on its PUBACK. The outbox runs on a
    fake clock (no committer thread): its commit window and deferred deletes fall due as they would."""
    from agent.assembly import publishing
    from agent.config import Config, DeviceConfig, OutboxConfig
    from agent.delivery.outbox import Outbox
    from agent.protocol.dsse import SigningKey
    from agent.types import Observation

    cfg = Config(device=DeviceConfig("cam-1", "lab", state_dir=str(folder)),
                 outbox=OutboxConfig(commit_interval_s=commit_interval_s))
    now = [0.0]
    outbox = Outbox(cfg.state_dir / "outbox.db", cfg.outbox.max_rows, cfg.outbox.max_bytes, commit_interval_s,
                    delete_interval_s, clock=lambda: now[0], autocommit=False)
    pub = publishing(cfg, SigningKey.generate(), {"v": 1, "device": "cam-1"}, "bench",
                     outbox=outbox, check_manifest=False)
    obs = [Observation("line_crossing", "door", "person", 0.0, {"count": 1}, "in")]
    sent = 0

    def send_and_ack() -> None:  # the sender: publishes committed rows only; PUBACK -> ack
        nonlocal sent
        rows = outbox.peek(100, after_seq=sent)
        if rows:
            sent = rows[-1].seq
            outbox.ack([r.seq for r in rows])

    before = wchar()
    for _ in range(events):
        now[0] += 1.0
        pub.emitter.emit(obs)
        outbox.commit_due()
        send_and_ack()
    now[0] += outbox.commit_interval_s + outbox.delete_interval_s  # the last window and deletes fall due
    outbox.commit_due()
    send_and_ack()
    outbox.commit_due()
    written = wchar() - before
    left = outbox.rows
    pub.close(0)
    per_event = written / max(1, events)
    return {"commit_interval_s": commit_interval_s, "events": events, "rows_left": left,
            "bytes_written": written, "bytes_per_event": round(per_event),
            "mb_per_day_at_1_event_s": round(per_event * 86400 / 1e6, 1)}


def replay_rss(clip: Path, model_dir: Path, state: Path, max_frames: int) -> dict[str, Any]:
    """Run `edge-agent replay` in a fresh process; its peak RSS and the state files it left."""
    import shutil

    shutil.copytree(model_dir, state / "models", dirs_exist_ok=True)
    cmd = [sys.executable, "-m", "agent", "replay", str(clip), "--state", str(state)]
    if max_frames:
        cmd += ["--max-frames", str(max_frames)]
    log = state / "replay.out"
    with open(log, "w+") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS (ru_maxrss, KiB)
        proc.returncode = os.waitstatus_to_exitcode(status)
        fh.seek(0)
        out = fh.read()
    log.unlink()
    if proc.returncode != 0:
        raise RuntimeError(f"replay failed: {out.strip()[-300:]}")
    files = {p.name: p.stat().st_size for p in sorted(state.iterdir()) if p.is_file()}
    frames = next((int(x.split()[1]) for x in out.splitlines() if x.startswith("frames:")), 0)
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "frames": frames, "state_files": files}


PI_PROFILE = "zero2w"  # the board profile whose outbox settings the write target is checked with


def pi_commit_interval_s() -> float:
    """outbox.commit_interval_s of the Raspberry Pi profile the write target applies to."""
    from agent.device.board import profiles

    return float(profiles()[PI_PROFILE].table.get("outbox", {}).get("commit_interval_s", 0.0))


def main(args: argparse.Namespace) -> int:
    from agent.errors import UsageError

    clip = Path(args.clip) if args.clip else _assets() / "video" / "one-by-one-person-detection.mp4"
    if not clip.is_file():
        raise UsageError(f"clip {str(clip)!r} not found; give --clip or set EDGE_AGENT_ASSETS")
    if args.events < 1:
        raise UsageError("--events must be >= 1")
    window = pi_commit_interval_s()
    with tempfile.TemporaryDirectory(prefix="footprint-") as tmp:
        root = Path(tmp)
        if args.model_dir:
            model_dir = Path(args.model_dir)
        else:
            from agent.assets import obtain
            from agent.detect import catalogue

            model_dir = root / "models"
            model_dir.mkdir()
            obtain(catalogue.model(catalogue.default_model()).pinned, model_dir, [_assets() / "models"],
                   download=False)
        rss = replay_rss(clip, model_dir, root / "replay", args.max_frames)
        durable = writes_per_event(root / "writes-durable", args.events, 0.0)
        pi = writes_per_event(root / "writes-pi", args.events, window)
    result = {
        "bench": "footprint",
        **rss,
        "writes_durable": durable,
        "writes_pi_profile": {"profile": PI_PROFILE, **pi},
        "rss_target_mb": RSS_TARGET_MB,
        "write_target_mb_day": WRITE_TARGET_MB_DAY,
        "rss_ok": rss["peak_rss_mb"] <= RSS_TARGET_MB,
        "writes_ok": pi["mb_per_day_at_1_event_s"] <= WRITE_TARGET_MB_DAY,
    }
    print(f"peak RSS of replay: {rss['peak_rss_mb']} MB (target <= {RSS_TARGET_MB} MB)")
    print(f"writes per event, durable default (outbox.commit_interval_s = 0, every event durable at once): "
          f"{durable['bytes_per_event']} bytes -> {durable['mb_per_day_at_1_event_s']} MB/day at 1 event/s")
    print(f"writes per event, {PI_PROFILE} profile (outbox.commit_interval_s = {window:g}: a power cut loses "
          f"at most that window, reported): {pi['bytes_per_event']} bytes -> {pi['mb_per_day_at_1_event_s']} "
          f"MB/day at 1 event/s (target <= {WRITE_TARGET_MB_DAY} MB/day)")
    emit(result)
    return 0 if result["rss_ok"] and result["writes_ok"] else 1
