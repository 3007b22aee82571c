"""`edge-agent track --mot-det DET.txt --out TRACKS.txt`: the tracker alone on MOTChallenge detections."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.commands import add_config_args, load_config
from agent.config import TrackerConfig
from agent.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("track", help="run the tracker on MOTChallenge detections and write MOT tracks")
    p.add_argument("--mot-det", required=True, metavar="DET.txt", help="MOTChallenge det.txt (pixels)")
    p.add_argument("--out", required=True, metavar="TRACKS.txt", help="where to write MOTChallenge tracks")
    p.add_argument("--width", type=int, default=640, help="image width in pixels (default 640)")
    p.add_argument("--height", type=int, default=480, help="image height in pixels (default 480)")
    p.add_argument("--fps", type=float, default=25.0, help="sequence frame rate (default 25)")
    add_config_args(p)
    p.set_defaults(func=cmd_track)


def run_mot(
    det: Path, out: Path, width: int, height: int, fps: float, cfg: TrackerConfig | None = None
) -> tuple[int, int]:
    """Track every frame of a det.txt; returns (frames, rows written)."""
    from agent.track import ByteTracker
    from agent.track.mot import frames_in_order, read_detections, write_tracks

    frames = read_detections(det, width, height)
    tracker = ByteTracker(cfg)
    n_frames = rows = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for k, dets in frames_in_order(frames):
            tracks = tracker.update(dets, (k - 1) / fps)
            rows += write_tracks(fh, k, tracks, width, height)
            n_frames += 1
    return n_frames, rows


def cmd_track(args: argparse.Namespace) -> int:
    if args.width <= 0 or args.height <= 0 or args.fps <= 0:
        raise UsageError("--width, --height and --fps must be > 0")
    cfg = load_config(args)
    n, rows = run_mot(Path(args.mot_det), Path(args.out), args.width, args.height, args.fps, cfg.tracker)
    print(f"frames: {n}\ntracks written: {rows} rows to {args.out}")
    return 0
