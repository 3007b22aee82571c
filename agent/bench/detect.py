"""Detect step (1280x720 RGB frame -> Detection list) versus bare invoke() on a ready tensor."""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from agent import config
from agent.bench import emit
from agent.commands import add_config_args, load_config

WIDTH, HEIGHT = 1280, 720


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="ID", help="model id (default: config)")
    p.add_argument("--model-dir", metavar="DIR", help="where installed models live (default: config)")
    p.add_argument("--threads", type=int, help="interpreter threads (default: config)")
    p.add_argument("--repeat", type=int, default=40, help="timed rounds (each: one bare invoke, one detect step)")
    p.add_argument("--image", metavar="FILE", help="picture resized to 1280x720 (default: a synthetic frame)")
    add_config_args(p)


def make_frame(image: str | None) -> Any:
    import cv2
    import numpy as np

    if image:
        from agent.commands.detect import read_image

        return np.ascontiguousarray(cv2.resize(read_image(image), (WIDTH, HEIGHT)))
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    rng = np.random.default_rng(7)
    frame = np.stack([(x * 255 // WIDTH), (y * 255 // HEIGHT), ((x + y) % 256)], axis=-1).astype(np.uint8)
    return np.clip(frame.astype(np.int16) + rng.integers(-20, 21, frame.shape), 0, 255).astype(np.uint8)


def main(args: argparse.Namespace) -> int:
    from agent.detect.factory import build_detector
    from agent.types import Frame

    cfg = load_config(args)
    changes: dict[str, Any] = {}
    if args.model:
        changes["model"] = args.model
    if args.model_dir:
        changes["model_dir"] = args.model_dir
    if args.threads:
        changes["threads"] = args.threads
    if changes:
        cfg = config.replace(cfg, detector=changes)
    det = build_detector(cfg)
    frame = Frame(make_frame(args.image), 0.0, 0)
    interp = det.interp

    for _ in range(3):  # warm-up; leaves the agent's input in the tensor: the bare loop's ready input
        found = det.detect(frame)
    bare: list[float] = []
    agent: list[float] = []
    pre: list[float] = []
    post: list[float] = []
    clock = time.perf_counter
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        t0 = clock()
        interp.invoke()
        bare.append(clock() - t0)
        t0 = clock()
        found = det.detect(frame)
        agent.append(clock() - t0)
        t0 = clock()
        det.pre.write(frame.image)
        t1 = clock()
        interp.invoke()
        t2 = clock()
        det.decode()
        t3 = clock()
        pre.append(t1 - t0)
        post.append(t3 - t2)
    bare_ms = statistics.median(bare) * 1000
    agent_ms = statistics.median(agent) * 1000
    emit({
        "bench": "detect", "model": det.model_id, "delegate": det.health()["delegate"],
        "threads": cfg.detector.threads, "frame": f"{WIDTH}x{HEIGHT}", "repeat": args.repeat,
        "detections": len(found), "bare_ms": round(bare_ms, 3), "agent_ms": round(agent_ms, 3),
        "ratio": round(bare_ms / agent_ms, 3),
        "pre_ms": round(statistics.median(pre) * 1000, 3), "decode_ms": round(statistics.median(post) * 1000, 3),
    })
    return 0
