"""Tracker plus rules per-frame time with 50 objects, and the frame loop's frames/s on a real clip.

Part 1 feeds 50 walking people (and their bags) to the tracker and to every rule (a zone
with occupancy, counting, loitering, gathering and unattended objects, plus a line) and
reports the median time per frame; target <= 1 ms. Part 2 replays the clip through the full
pipeline (decode, detect, track, rules, sign, outbox; the threaded frame loop) in interleaved
rounds and compares its frames/s with 1 / (median bare invoke()) of the same interpreter,
measured just before and just after the run (target >= 0.95: the loop is bound only by
inference), and with a bare sequential decode-resize-invoke loop at the same thread count
(target >= 1.0), as medians of the rounds' ratios (each round measures all of them back to back).
Rates are steady rates, from the first frame to the last (opening the video before the first
frame and the pipeline's final flush after the last are not part of a loop that runs for months;
the whole-run rate is printed beside it). For reference it also measures the pipeline run
sequentially and the bare loop with every core given to the interpreter.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import config
from agent.bench import emit
from agent.commands import add_config_args, load_config, with_detector_options

CLIP = "one-by-one-person-detection.mp4"


def register(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", nargs="?", help=f"video to replay (default: the assets' {CLIP})")
    p.add_argument("--objects", type=int, default=50, help="objects in the synthetic scene (default 50)")
    p.add_argument("--frames", type=int, default=200, help="frames for each measurement (default 200)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved pipeline/bare rounds (default 5)")
    p.add_argument("--assets", default="../shared/assets", help="assets folder holding video/" + CLIP)
    p.add_argument("--model", metavar="ID", help="model id (default: config)")
    p.add_argument("--model-dir", metavar="DIR", help="where installed models live (default: config)")
    p.add_argument("--threads", type=int, help="interpreter threads (default: config)")
    add_config_args(p)


def scene_config() -> config.Config:
    return config.parse({
        "detector": {"classes": ["person", "backpack"]},
        "zones": [{"id": "plaza", "polygon": [[0.05, 0.05], [0.95, 0.05], [0.95, 0.95], [0.05, 0.95]],
                   "classes": ["person"], "loiter_after_s": 5, "gathering_rise": 5, "gathering_threshold": 40,
                   "unattended_after_s": 5, "unattended_classes": ["backpack"], "count_every_s": 10}],
        "lines": [{"id": "mid", "points": [[0.5, 0.0], [0.5, 1.0]]}],
    })


def tracker_rules_ms(objects: int, frames: int, seed: int = 7) -> tuple[float, float, int, int]:
    """Median wall and CPU ms per frame of tracker.update + every rule, observations, confirmed tracks."""
    from agent.rules import build_rules
    from agent.track import ByteTracker
    from agent.types import Box, Detection

    rng = random.Random(seed)
    cfg = scene_config()
    tracker, rules = ByteTracker(cfg.tracker), build_rules(cfg)
    n_bags = objects // 10
    walkers = [[rng.uniform(0.1, 0.9), rng.uniform(0.2, 0.9), rng.uniform(-0.004, 0.004), rng.uniform(-0.002, 0.002)]
               for _ in range(objects - n_bags)]
    bags = [(rng.uniform(0.1, 0.9), rng.uniform(0.3, 0.9)) for _ in range(n_bags)]
    times: list[float] = []
    cpu: list[float] = []
    observations = confirmed = 0
    for k in range(frames):
        dets = []
        for w in walkers:
            w[0] = min(0.95, max(0.05, w[0] + w[2] + rng.gauss(0, 0.001)))
            w[1] = min(0.95, max(0.15, w[1] + w[3] + rng.gauss(0, 0.001)))
            box = Box(w[0] - 0.015, w[1] - 0.08, w[0] + 0.015, w[1])
            dets.append(Detection("person", rng.uniform(0.55, 0.95), box))
        for x, y in bags:
            dets.append(Detection("backpack", 0.7, Box(x - 0.01, y - 0.02, x + 0.01, y)))
        now = k / 10.0
        c0, t0 = time.thread_time(), time.perf_counter()
        tracks = tracker.update(dets, now)
        for r in rules:
            observations += len(r.update(tracks, now))
        times.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.thread_time() - c0) * 1000.0)
        confirmed = sum(t.confirmed for t in tracks)
    return statistics.median(times[10:]), statistics.median(cpu[10:]), observations, confirmed


def steady_fps(marks: list[float]) -> float:
    """Frames per second between the first and the last of per-frame time marks: a loop's steady
    rate, without opening the video before the first frame or the final flush after the last."""
    return (len(marks) - 1) / (marks[-1] - marks[0]) if len(marks) > 1 and marks[-1] > marks[0] else 0.0


def bare_loop(video: str, model_file: Path, threads: int, frames: int, rgb: bool = False) -> tuple[float, float]:
    """Decode, resize, invoke, one after the other: (steady frames/s, CPU s per frame). OpenCV
    decodes B, G, R; for an `rgb` model the resized picture is swapped (the cheapest place)."""
    import cv2
    import numpy as np

    from agent.detect.runtime import load_interpreter

    interp = load_interpreter(model_file, threads)
    inp = interp.get_input_details()[0]
    _, h, w, _ = inp["shape"]
    cap = cv2.VideoCapture(video)
    n = 0
    marks: list[float] = []
    c0 = time.process_time()
    while n < frames:
        ok, bgr = cap.read()
        if not ok:
            break
        x = cv2.resize(bgr, (int(w), int(h)))
        if rgb:
            x = cv2.cvtColor(x, cv2.COLOR_BGR2RGB)
        interp.set_tensor(inp["index"], x.view(inp["dtype"])[np.newaxis])
        interp.invoke()
        marks.append(time.perf_counter())
        n += 1
    cpu = time.process_time() - c0
    cap.release()
    return steady_fps(marks), cpu / max(1, n)


def first_frame(video: str, det: Any) -> None:
    """Detect on the clip's first frame, so the input tensor holds a real picture (an SSD's
    in-graph post-processing takes longer on a frame with things in it than on zeros)."""
    import cv2

    from agent.types import Frame

    cap = cv2.VideoCapture(video)
    ok, bgr = cap.read()
    cap.release()
    if ok:
        det.detect(Frame(bgr, 0.0, 0, channels="bgr"))


def bare_invokes(interp: Any, n: int) -> list[float]:
    """Wall seconds of n invoke() calls on the input the interpreter already holds."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t0)
    return times


class TimedStages:
    """The detector's stages, noting when each infer() starts and how long it takes, and when
    the caller's thread takes each frame's detections (bench only)."""

    def __init__(self, stages: Any) -> None:
        self.stages = stages
        self.starts: list[float] = []
        self.infers: list[float] = []
        self.marks: list[float] = []  # per frame, in order: one point of the loop's cycle
        self.prepare = stages.prepare

    def detections(self, inferred: Any) -> Any:
        found = self.stages.detections(inferred)
        self.marks.append(time.perf_counter())
        return found

    def infer(self, prepared: Any) -> Any:
        t0 = time.perf_counter()
        out = self.stages.infer(prepared)
        self.starts.append(t0)
        self.infers.append(time.perf_counter() - t0)
        return out

    def cycle_ms(self) -> float:
        """Median time from one infer() start to the next: the loop's period when undisturbed."""
        gaps = [b - a for a, b in zip(self.starts, self.starts[1:])]
        return statistics.median(gaps) * 1000.0 if gaps else 0.0


class _Instrumented:
    """The pipeline's detector with the bench's timed stages in place of its own (bench only)."""

    def __init__(self, det: Any, timed: TimedStages) -> None:
        self.det, self.timed = det, timed
        self.model_id, self.model_sha256 = det.model_id, det.model_sha256

    def detect(self, frame: Any) -> Any:  # the sequential loop's step
        found = self.det.detect(frame)
        self.timed.marks.append(time.perf_counter())
        return found

    def stages(self) -> TimedStages:
        return self.timed  # the run's FrameLoop uses these

    def set_masks(self, masks: Any) -> bool:
        return bool(self.det.set_masks(masks))

    def health(self) -> dict[str, Any]:
        return dict(self.det.health())


@dataclass(frozen=True)
class Round:
    """One pipeline run and the bare invoke() of its interpreter measured around it."""

    fps: float  # steady: between the first and the last frame's detections
    run_fps: float  # the whole run: opening the video and the final flush included
    cpu_s: float  # CPU seconds per frame, all threads
    invoke_ms: float  # mean of the medians of the bare invokes just before and just after the run (0: none)
    period_ms: float  # the inference thread's median period during the run
    model_id: str


def pipeline_round(cfg: config.Config, threaded: bool, invokes: int = 0) -> Round:
    """The whole pipeline on the clip; with `invokes`, that many bare invoke() of the same
    interpreter just before the run and as many just after it: their median brackets the run,
    so a machine that speeds up or slows down during the round moves both sides alike."""
    from agent.assembly import assemble

    asm = assemble(cfg, lambda s: None, throwaway_key=True)
    asm.pipeline.threaded = threaded
    det: Any = asm.pipeline.detector  # the TFLite detector (behind the heartbeat's timer)
    timed = TimedStages(det.stages())
    asm.pipeline.detector = _Instrumented(det, timed)
    first_frame(cfg.source.path, det)  # the bare invokes run on a real frame of the clip
    for _ in range(3):  # a fresh interpreter's first invokes are slower: measure the steady state
        det.interp.invoke()
    before = bare_invokes(det.interp, invokes)
    c0 = time.process_time()
    summary = asm.pipeline.run()
    cpu = (time.process_time() - c0) / max(1, summary.frames)
    after = bare_invokes(det.interp, invokes)  # the run leaves its last frame in the input
    asm.outbox.close()
    invoke_ms = (statistics.median(before) + statistics.median(after)) * 500.0 if invokes else 0.0
    return Round(steady_fps(timed.marks), summary.fps, cpu, invoke_ms, timed.cycle_ms(), det.model_id)


def main(args: argparse.Namespace) -> int:
    from agent.detect import catalogue
    from agent.detect.factory import model_path
    from agent.errors import UsageError

    if args.objects < 1 or args.frames < 20 or args.rounds < 1:
        raise UsageError("--objects and --rounds must be >= 1 and --frames >= 20")
    video = args.video or str(Path(args.assets) / "video" / CLIP)
    if not Path(video).is_file():
        raise UsageError(f"video {video!r} not found; pass VIDEO or --assets")
    runs = [tracker_rules_ms(args.objects, args.frames) for _ in range(3)]
    ms = min(r[0] for r in runs)  # best of three medians: other processes only ever add time
    cpu_ms = min(r[1] for r in runs)
    n_obs, n_conf = runs[0][2], runs[0][3]
    print(f"tracker + rules, {args.objects} objects: median {ms:.3f} ms/frame wall, {cpu_ms:.3f} ms CPU "
          f"(wall medians of 3 runs: {', '.join(f'{r[0]:.3f}' for r in runs)}; "
          f"{n_conf} confirmed tracks, {n_obs} observations)")

    cfg = with_detector_options(load_config(args), model=args.model or None, model_dir=args.model_dir or None,
                                threads=args.threads or None)
    threads, cores = cfg.detector.interpreter_threads, len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config.replace(
            cfg,
            device={"state_dir": tmp, "key": ""},
            detector={"model_dir": str(cfg.model_dir)},
            source={"kind": "replay", "path": video, "max_frames": args.frames, "realtime": False},
        )
        model = model_path(cfg, cfg.detector.model)
        rgb = catalogue.model(cfg.detector.model).channels != "bgr"
        bare_loop(video, model, threads, 10, rgb)  # warm the page cache and the CPU
        agents, invokes, bares, seqs, alls, cycles, whole = [], [], [], [], [], [], []
        agent_cpu, bare_cpu = [], []
        load_before = os.getloadavg()[0]
        for _ in range(args.rounds):
            run = pipeline_round(cfg, threaded=True, invokes=args.frames // 2)
            agents.append(run.fps)
            whole.append(run.run_fps)
            agent_cpu.append(run.cpu_s)
            cycles.append(run.period_ms)
            invokes.append(run.invoke_ms)
            model_id = run.model_id
            fps, cpu = bare_loop(video, model, threads, args.frames, rgb)
            bares.append(fps)
            bare_cpu.append(cpu)
            seqs.append(pipeline_round(cfg, threaded=False).fps)
            if threads != cores:
                alls.append(bare_loop(video, model, cores, args.frames, rgb)[0])
        load = max(load_before, os.getloadavg()[0])
    # Each round measures the loop and its baselines back to back, so a round's ratios compare
    # like with like; the figures are the medians of the rounds' ratios. The best round of each
    # (other processes only ever slow a round down) gives the absolute rates.
    ratio_invoke = statistics.median(a * i / 1000.0 for a, i in zip(agents, invokes))
    ratio = statistics.median(a / b for a, b in zip(agents, bares))
    agent_fps, bare_fps, invoke_ms = max(agents), max(bares), min(invokes)
    # A load-robust view of the same question: the median period of the inference thread
    # (invoke start to invoke start) against the median bare invoke, per round. Medians skip the
    # frames on which another process took the CPU; the wall rates above do not.
    ratio_cycle = statistics.median(i / c for i, c in zip(invokes, cycles))
    # CPU seconds per frame (all threads of this process) hardly depend on what else runs on
    # the machine: the pipeline's own overhead over the bare loop's work.
    cpu_ratio = min(bare_cpu) / min(agent_cpu)

    def show(values: list[float], fmt: str = ".1f") -> str:
        return ", ".join(format(v, fmt) for v in values)

    print(f"model {model_id}, {threads} interpreter thread(s) on {cores} cores, "
          f"{args.frames} frames x {args.rounds} rounds, load average up to {load:.1f}")
    print(f"frame loop (threaded pipeline), steady rate from the first frame's detections to the last's: "
          f"best {agent_fps:.1f} frames/s (rounds: {show(agents)}); whole runs, opening the video and the "
          f"final flush included: best {max(whole):.1f} (rounds: {show(whole)})")
    print(f"bare invoke() of the same interpreter around each run: best median {invoke_ms:.2f} ms = "
          f"{1000 / invoke_ms:.1f}/s "
          f"(rounds: {show(invokes, '.2f')}); loop / (1 / invoke), median of rounds: {ratio_invoke:.3f} "
          f"(target >= 0.95)")
    print(f"inference thread's median period {min(cycles):.2f} ms (rounds: {show(cycles, '.2f')}); "
          f"median bare invoke / median period, median of rounds: {ratio_cycle:.3f}")
    print(f"bare sequential decode-resize-invoke loop: best {bare_fps:.1f} frames/s (rounds: {show(bares)}); "
          f"loop / bare loop, median of rounds: {ratio:.3f} (target >= 1.0)")
    print(f"pipeline run sequentially: best {max(seqs):.1f} frames/s (rounds: {show(seqs)})")
    if alls:
        print(f"bare sequential loop with {cores} interpreter threads: best {max(alls):.1f} frames/s "
              f"(rounds: {show(alls)})")
    print(f"CPU per frame: pipeline {min(agent_cpu) * 1000:.1f} ms, bare loop {min(bare_cpu) * 1000:.1f} ms")
    figures = {
        "bench": "scene", "objects": args.objects, "tracker_rules_ms_median": round(ms, 3),
        "tracker_rules_cpu_ms_median": round(cpu_ms, 3), "tracker_rules_target_ms": 1.0,
        "model": model_id, "threads": threads, "cores": cores, "frames": args.frames,
        "rounds": args.rounds, "load_avg": round(load, 2), "agent_fps": round(agent_fps, 2),
        "agent_run_fps": round(max(whole), 2),
        "invoke_ms": round(invoke_ms, 3), "ratio_invoke": round(ratio_invoke, 3),
        "ratio_invoke_target": 0.95, "bare_fps": round(bare_fps, 2), "ratio": round(ratio, 3),
        "ratio_target": 1.0, "sequential_agent_fps": round(max(seqs), 2), "cpu_ratio": round(cpu_ratio, 3),
        "loop_period_ms": round(min(cycles), 3), "ratio_period": round(ratio_cycle, 3),
    }
    if alls:
        figures["bare_fps_all_cores"] = round(max(alls), 2)
    emit(figures)
    return 0
