"""Footprint: peak RSS of `replay` on the real clip with the default model, and SD-card writes per event.

Peak RSS is the replay child's own high-water mark (ru_maxrss from wait4, in a fresh process).
Writes are the bytes the process hands to write()/pwrite() (/proc/self/io wchar, which counts
writes to a tmpfs too) while the publishing half appends events to a fresh state folder's outbox
(SQLite WAL, counters) and the acks delete them again, one by one as the sender does at that rate,
divided by the events; extrapolated to MB per day at 1 event/s. Also listed: the state folder's files
and what the replay wrote to them.
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


def writes_per_event(folder: Path, events: int, ack_batch: int = 1) -> dict[str, Any]:
    """Append `events` line crossings through the real publishing half and ack them as the sender
    does at 1 event/s (its deletes run every 20 ms, so each PUBACK is deleted on its own)."""
    from agent.assembly import open_outbox, publishing
    from agent.config import Config, DeviceConfig
    from agent.protocol.dsse import SigningKey
    from agent.types import Observation

    cfg = Config(device=DeviceConfig("cam-1", "lab", state_dir=str(folder)))
    pub = publishing(cfg, SigningKey.generate(), {"v": 1, "device": "cam-1"}, "bench",
                     outbox=open_outbox(cfg), check_manifest=False)
    obs = [Observation("line_crossing", "door", "person", 0.0, {"count": 1}, "in")]
    before = wchar()
    seqs: list[int] = []
    for _ in range(events):
        seqs += pub.emitter.emit(obs)
        if len(seqs) >= ack_batch:
            pub.outbox.ack(seqs)
            seqs = []
    if seqs:
        pub.outbox.ack(seqs)
    written = wchar() - before
    pub.close(0)
    per_event = written / max(1, events)
    return {"events": events, "bytes_written": written, "bytes_per_event": round(per_event),
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


def main(args: argparse.Namespace) -> int:
    from agent.errors import UsageError

    clip = Path(args.clip) if args.clip else _assets() / "video" / "one-by-one-person-detection.mp4"
    if not clip.is_file():
        raise UsageError(f"clip {str(clip)!r} not found; give --clip or set EDGE_AGENT_ASSETS")
    if args.events < 1:
        raise UsageError("--events must be >= 1")
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
        writes = writes_per_event(root / "writes", args.events)
    result = {
        "bench": "footprint",
        **rss,
        **writes,
        "rss_target_mb": RSS_TARGET_MB,
        "write_target_mb_day": WRITE_TARGET_MB_DAY,
        "rss_ok": rss["peak_rss_mb"] <= RSS_TARGET_MB,
        "writes_ok": writes["mb_per_day_at_1_event_s"] <= WRITE_TARGET_MB_DAY,
    }
    print(f"peak RSS of replay: {rss['peak_rss_mb']} MB (target <= {RSS_TARGET_MB} MB)")
    print(f"writes per event: {writes['bytes_per_event']} bytes -> {writes['mb_per_day_at_1_event_s']} MB/day "
          f"at 1 event/s (target <= {WRITE_TARGET_MB_DAY} MB/day)")
    emit(result)
    return 0 if result["rss_ok"] and result["writes_ok"] else 1

