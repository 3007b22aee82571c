"""Walking-skeleton pipeline frames/s on a replayed clip versus a bare decode-resize-invoke loop."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from agent import config
from agent.bench import emit
from agent.commands import add_config_args, load_config


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="video file to replay")
    p.add_argument("--frames", type=int, default=300, help="frames to process in each loop")
    add_config_args(p)


def bare_loop(video: str, model_file: Path, threads: int, frames: int) -> float:
    import cv2
    import numpy as np

    from agent.detect.runtime import load_interpreter

    interp = load_interpreter(model_file, threads)
    inp = interp.get_input_details()[0]
    _, h, w, _ = inp["shape"]
    cap = cv2.VideoCapture(video)
    n = 0
    t0 = time.perf_counter()
    while n < frames:
        ok, bgr = cap.read()
        if not ok:
            break
        x = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (int(w), int(h)))
        interp.set_tensor(inp["index"], x[np.newaxis])
        interp.invoke()
        n += 1
    cap.release()
    return n / (time.perf_counter() - t0)


def main(args: argparse.Namespace) -> int:
    from agent.detect.factory import model_path
    from agent.pipeline import assemble

    cfg = load_config(args)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.replace(
            cfg,
            device={"state_dir": tmp, "key": ""},
            detector={"model_dir": str(cfg.model_dir)},
            source={"kind": "replay", "path": args.video, "max_frames": args.frames},
        )
        bare = bare_loop(args.video, model_path(cfg, cfg.detector.model), cfg.detector.threads, args.frames)
        asm = assemble(cfg, lambda s: None)
        summary = asm.pipeline.run()
        asm.outbox.close()
    emit({"bench": "pipeline", "frames": summary.frames, "bare_fps": round(bare, 2),
          "agent_fps": round(summary.fps, 2), "ratio": round(summary.fps / bare, 3)})
    return 0
