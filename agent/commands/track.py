"""`edge-agent track`: MOTChallenge tracks from a video file (capture -> detect -> track) or a det.txt.

An offline evaluation tool: it reads files only, never a live camera, and its output holds
positions (boxes per frame), so it stays on the machine that evaluates; nothing is signed or sent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from agent import config
from agent.commands import add_config_args, load_config, with_detector_options
from agent.config import Config, TrackerConfig
from agent.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "track",
        help="write MOTChallenge tracks (positions) from a video file, or from MOT detections (--mot-det)",
    )
    p.add_argument("video", nargs="?", metavar="VIDEO",
                   help="video file or image folder: the device's capture -> detect -> track path")
    p.add_argument("--mot-det", metavar="DET.txt", help="instead of a video: MOTChallenge det.txt (pixels)")
    p.add_argument("--out", required=True, metavar="TRACKS.txt",
                   help="where to write frame,id,x,y,w,h,score,-1,-1,-1 rows (positions: keep it local)")
    p.add_argument("--model", metavar="ID", help="model id from `edge-agent models list` (default: config)")
    p.add_argument("--model-dir", metavar="DIR", help="where installed models live (default: config)")
    p.add_argument("--max-frames", type=int, default=0, help="VIDEO: stop after N frames (0: all)")
    p.add_argument("--width", type=int, default=640, help="--mot-det: image width in pixels (default 640)")
    p.add_argument("--height", type=int, default=480, help="--mot-det: image height in pixels (default 480)")
    p.add_argument("--fps", type=float, default=25.0, help="--mot-det: sequence frame rate (default 25)")
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


def run_video(video: Path, out: Path, cfg: Config, max_frames: int = 0) -> tuple[int, int]:
    """Every frame of a video file through the configured detector and tracker; (frames, rows)."""
    from agent.capture import open_source
    from agent.detect.factory import build_detector
    from agent.track import ByteTracker
    from agent.track.mot import write_tracks

    if video.exists() and not (video.is_file() or video.is_dir()):
        raise UsageError(f"{str(video)!r} is not a video file; `track` reads files only, never a live camera")
    cfg = config.replace(cfg, source={"kind": "replay", "path": str(video), "realtime": False, "loop": False,
                                      "max_frames": max_frames})
    source = open_source(cfg.source)  # a missing or undecodable file is one line, before the model loads
    try:
        detector = build_detector(cfg)
        tracker = ByteTracker(cfg.tracker)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("", encoding="utf-8")  # writable before the first frame, or one line
        except OSError as exc:
            raise UsageError(f"cannot write --out {str(out)!r}: {exc.strerror}") from None
        n_frames = rows = 0
        with open(out, "w", encoding="utf-8") as fh:
            for frame in source.frames():
                if frame is None:  # only live cameras yield None; a file never does
                    continue
                tracks = tracker.update(detector.detect(frame), frame.t_s)
                h, w = frame.image.shape[:2]
                rows += write_tracks(fh, frame.index + 1, tracks, w, h)
                n_frames += 1
    finally:
        source.close()
    return n_frames, rows


def cmd_track(args: argparse.Namespace) -> int:
    if bool(args.video) == bool(args.mot_det):
        raise UsageError("give either VIDEO or --mot-det DET.txt")
    given = Path(args.video) if args.video else None
    if args.video and ("://" in args.video or (args.video.startswith("/dev/") and given is not None
                                               and not given.is_file() and not given.is_dir())):
        raise UsageError(f"{args.video!r} is a camera or a stream; `track` reads video files only, never a live "
                         f"camera (it writes positions: an offline evaluation tool)")
    if args.max_frames < 0:
        raise UsageError("--max-frames must be >= 0")
    cfg = load_config(args)
    out = Path(args.out)
    if args.mot_det:
        if args.width <= 0 or args.height <= 0 or args.fps <= 0:
            raise UsageError("--width, --height and --fps must be > 0")
        n, rows = run_mot(Path(args.mot_det), out, args.width, args.height, args.fps, cfg.tracker)
    else:
        cfg = with_detector_options(cfg, model=args.model or None, model_dir=args.model_dir or None)
        n, rows = run_video(Path(args.video), out, cfg, args.max_frames)
    print(f"frames: {n}\ntracks written: {rows} rows to {args.out}")
    return 0
