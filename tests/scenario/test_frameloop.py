"""The threaded frame loop: same events as the sequential loop, stages overlap, queues bounded, clean stop.

Nothing here is timed: overlap is proven by stages that can only finish if another stage runs
at the same time (with the sequential loop they would wait for ever; the timeouts only turn
such a hang into a failure), and the bound by the channels' own high-water marks.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from tests.helpers import cli

from agent import config
from agent.capture import FileClock
from agent.errors import SourceError
from agent.frameloop import Channel, Closed, FrameLoop, Idle, Result
from agent.assembly import assemble
from agent.types import Detection, Frame, Observation

GUARD_S = 30.0  # only ever reached when the property under test is broken

ZONE_AND_LINE = {
    "zones": [{"id": "table", "polygon": [[0.30, 0.05], [0.85, 0.05], [0.85, 1.0], [0.30, 1.0]],
               "classes": ["person"], "loiter_after_s": 8, "gathering_threshold": 2}],
    "lines": [{"id": "exit", "points": [[0.75, 0.0], [0.75, 1.0]]}],
}


def record(asm: Any) -> tuple[list[tuple[int, list[Detection]]], list[Observation]]:
    """Wrap the pipeline so every frame's detections and every emitted observation are kept."""
    pipe, seen, emitted = asm.pipeline, [], []
    after, emit = pipe.after_detect, pipe.emitter.emit

    def after_detect(frame: Frame, detections: list[Detection]) -> list[Observation]:
        seen.append((frame.index, list(detections)))
        return after(frame, detections)  # type: ignore[no-any-return]

    def keep(observations: list[Observation]) -> None:
        emitted.extend(observations)
        emit(observations)

    pipe.after_detect, pipe.emitter.emit = after_detect, keep
    return seen, emitted


@pytest.mark.slow
def test_threaded_loop_gives_exactly_the_sequential_loops_events_on_the_real_clip(
    tmp_path: Path, model_dir: Path, clip: Path
) -> None:
    runs = {}
    for threaded in (False, True):
        cfg = config.replace(
            config.parse(ZONE_AND_LINE), device={"state_dir": str(tmp_path / str(threaded))},
            detector={"model_dir": str(model_dir)},
            source={"kind": "replay", "path": str(clip), "max_frames": 460},  # two visits
        )
        asm = assemble(cfg, lambda s: None, throwaway_key=True)
        asm.pipeline.threaded = threaded
        seen, emitted = record(asm)
        summary = asm.pipeline.run()
        asm.outbox.close()
        runs[threaded] = (seen, emitted, summary, asm.pipeline.loop)
    (seq, seq_obs, seq_sum, no_loop), (thr, thr_obs, thr_sum, loop) = runs[False], runs[True]
    assert no_loop is None and loop is not None  # the second run really went through the threads
    assert [i for i, _ in thr] == list(range(460)) == [i for i, _ in seq]  # every frame, in order
    assert thr == seq  # the same detections, frame by frame, to the last bit of every float
    assert sum(len(d) for _, d in thr) > 300  # and there were people to find
    assert thr_obs == seq_obs  # the same observations at the same media times
    kinds = {o.type for o in thr_obs}
    assert {"line_crossing", "loitering_start", "loitering_end", "occupancy"} <= kinds, kinds
    assert thr_sum.events == seq_sum.events and thr_sum.frames == seq_sum.frames == 460
    # bounded: at most two of a file's frames wait for inference and four for post-processing
    assert loop.prepared.capacity == 2 and loop.inferred.capacity == 4
    assert 1 <= loop.prepared.high_water <= 2 and 1 <= loop.inferred.high_water <= 4
    assert loop.alive() == []  # run() ended both threads


class Numbers(FileClock):
    """A file-like source of numbered 4x4 frames; counts how many frames were taken from it."""

    def __init__(self, count: int = 0) -> None:
        self.count = count  # 0: endless
        self.taken = 0
        self.closed = False

    def frames(self) -> Iterator[Frame]:
        n = 0
        while not self.count or n < self.count:
            self.taken += 1
            yield Frame(np.zeros((4, 4, 3), np.uint8), n / 10.0, n)
            n += 1

    def close(self) -> None:
        self.closed = True


class Overlapping:
    """Stages that can only finish frame 0 if the next stage of another frame runs meanwhile."""

    def __init__(self) -> None:
        self.prepare_1 = threading.Event()
        self.infer_1 = threading.Event()
        self.threads: dict[str, set[str]] = {"prepare": set(), "infer": set(), "detections": set()}

    def prepare(self, frame: Frame) -> Frame:
        self.threads["prepare"].add(threading.current_thread().name)
        if frame.index == 1:
            self.prepare_1.set()
        return frame

    def infer(self, frame: Frame) -> Frame:
        self.threads["infer"].add(threading.current_thread().name)
        if frame.index == 0:  # frame 1 is prepared while frame 0 is in inference
            assert self.prepare_1.wait(GUARD_S), "capture did not run beside inference"
        if frame.index == 1:
            self.infer_1.set()
        return frame

    def detections(self, frame: Frame) -> list[Detection]:
        self.threads["detections"].add(threading.current_thread().name)
        if frame.index == 0:  # frame 0 is post-processed while frame 1 is in inference
            assert self.infer_1.wait(GUARD_S), "post-processing did not run beside inference"
        return []


def test_capture_inference_and_post_processing_run_at_the_same_time() -> None:
    stages = Overlapping()
    loop = FrameLoop(Numbers(5), stages)
    loop.start()
    try:
        got = [item.frame.index for item in loop.results() if isinstance(item, Result)]
    finally:
        loop.stop()
    assert got == [0, 1, 2, 3, 4]
    assert stages.threads == {"prepare": {"frameloop-capture"}, "infer": {"frameloop-inference"},
                              "detections": {threading.current_thread().name}}
    assert loop.alive() == []


class Held:
    """Inference of frame 2 waits until the test lets it go; prepare says when frame 4 is ready."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.prepared_4 = threading.Event()

    def prepare(self, frame: Frame) -> Frame:
        if frame.index == 4:
            self.prepared_4.set()
        return frame

    def infer(self, frame: Frame) -> Frame:
        if frame.index == 2:
            assert self.release.wait(GUARD_S)
        return frame

    def detections(self, frame: Frame) -> list[Detection]:
        return []


def test_a_slow_inference_holds_back_capture_after_two_prepared_frames() -> None:
    source, stages = Numbers(), Held()
    loop = FrameLoop(source, stages)
    loop.start()
    results = loop.results()
    try:
        assert [next(results).frame.index for _ in range(2)] == [0, 1]  # type: ignore[union-attr]
        assert stages.prepared_4.wait(GUARD_S)  # frame 2 in inference, 3 and 4 prepared
        # capture waits for room before it takes a frame: frame 5 is still in the source
        assert source.taken == 5
        stages.release.set()
        assert [next(results).frame.index for _ in range(20)] == list(range(2, 22))  # type: ignore[union-attr]
    finally:
        loop.stop()
    assert loop.alive() == []
    assert loop.prepared.high_water <= 2 and loop.inferred.high_water <= 4
    assert source.taken <= 22 + 4 + 1 + 2  # consumed + inferred + in inference + prepared


def test_stop_ends_the_threads_of_an_endless_source_and_the_visits_are_closed(tmp_path: Path, model_dir: Path) -> None:
    cfg = config.replace(config.Config(), device={"state_dir": str(tmp_path)}, detector={"model_dir": str(model_dir)},
                         source={"kind": "synthetic", "max_frames": 0, "fps": 5.0})
    asm = assemble(cfg, lambda s: None, throwaway_key=True)
    pipe = asm.pipeline
    finished, finish = [], pipe.finish

    def finish_and_note() -> list[Observation]:
        finished.append(pipe.last_t_s)
        return finish()  # type: ignore[no-any-return]

    pipe.finish = finish_and_note  # type: ignore[method-assign]
    summary = pipe.run(stop=lambda: pipe.frames >= 12)  # as SIGTERM's handler would say
    asm.outbox.close()
    assert summary.frames == 12
    assert finished == [11 / 5.0]  # the rules were closed at the last frame's time (open visits end)
    assert pipe.loop is not None and pipe.loop.alive() == []
    assert not [t for t in threading.enumerate() if t.name.startswith("frameloop")]


def test_a_lost_camera_still_ticks_and_stop_ends_the_threads(tmp_path: Path, model_dir: Path, clip: Path) -> None:
    """A v4l2 source on a short video: its end is a lost camera, which must raise an alarm
    from the periodic stages (Idle beats through the loop), never an exception."""
    device = tmp_path / "cam.mp4"
    reader, writer = cv2.VideoCapture(str(clip)), None
    for _ in range(15):
        ok, bgr = reader.read()
        assert ok
        if writer is None:
            writer = cv2.VideoWriter(str(device), cv2.VideoWriter_fourcc(*"mp4v"), 10, (bgr.shape[1], bgr.shape[0]))
        writer.write(bgr)
    reader.release()
    assert writer is not None
    writer.release()
    cfg = config.replace(config.Config(), device={"state_dir": str(tmp_path / "s")},
                         detector={"model_dir": str(model_dir)}, source={"kind": "v4l2", "path": str(device)})
    asm = assemble(cfg, lambda s: None, throwaway_key=True)
    pipe = asm.pipeline
    summary = pipe.run(stop=lambda: pipe.emitter.counts["alarm"] >= 1)
    asm.outbox.close()
    assert summary.camera_errors >= 1 and summary.events["alarm"] == 1
    assert pipe.loop is not None and pipe.loop.prepared.capacity == 1  # live: one prepared frame at most
    assert pipe.loop.prepared.high_water == 1
    assert pipe.loop.alive() == []
    assert not [t for t in threading.enumerate() if t.name.startswith(("frameloop", "grab-"))]


def test_a_bad_image_in_a_replayed_folder_is_the_same_one_line_error(
    tmp_path: Path, model_dir: Path, assets: Path
) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        shutil.copy(assets / "images" / "zidane.jpg", folder / f"{i:03d}.jpg")
    (folder / "003.jpg").write_bytes(b"not a picture")
    cfg = config.replace(config.Config(), device={"state_dir": str(tmp_path / "s")},
                         detector={"model_dir": str(model_dir)}, source={"kind": "replay", "path": str(folder)})
    raised = {}
    for threaded in (False, True):
        asm = assemble(cfg, lambda s: None, throwaway_key=True)
        asm.pipeline.threaded = threaded
        with pytest.raises(SourceError) as info:
            asm.pipeline.run()
        asm.outbox.close()
        raised[threaded] = (str(info.value), asm.pipeline.frames)
        assert asm.pipeline.loop is None or asm.pipeline.loop.alive() == []
    assert raised[True] == raised[False] and raised[True][1] == 3  # after the three good frames
    models_cfg = _models_config(tmp_path, model_dir)
    r = cli("replay", str(folder), "--state", str(tmp_path / "s2"), "--config", str(models_cfg))
    lines = [ln for ln in r.stderr.splitlines()
             if "throwaway device identity" not in ln and "board profile:" not in ln]  # start-up notes
    assert r.returncode == 2 and len(lines) == 1 and "is not an image" in lines[0], r.stderr


def _models_config(tmp_path: Path, model_dir: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(f'[detector]\nmodel_dir = "{model_dir}"\n')
    return path


def test_a_closed_channel_wakes_both_sides() -> None:
    ch: Channel[int] = Channel(1)
    ch.put(1)
    outcome: list[str] = []

    def producer() -> None:
        try:
            ch.put(2)  # full: waits until a get() or close()
            outcome.append("put")
        except Closed:
            outcome.append("closed")

    t = threading.Thread(target=producer)
    t.start()
    ch.close()
    t.join(GUARD_S)
    assert not t.is_alive() and outcome == ["closed"]  # nobody took the first item
    with pytest.raises(Closed):
        ch.get()
    assert ch.high_water == 1


def test_idle_beats_pass_through_in_order() -> None:
    class Flaky(Numbers):
        def frames(self) -> Iterator[Frame | None]:  # type: ignore[override]
            yield from (None, Frame(np.zeros((4, 4, 3), np.uint8), 0.0, 0), None)

        def now_s(self) -> float:
            return 7.0

    class Plain:
        def prepare(self, frame: Frame) -> Frame:
            return frame

        infer = prepare

        def detections(self, frame: Frame) -> list[Detection]:
            return []

    loop = FrameLoop(Flaky(), Plain())
    loop.start()
    try:
        items = list(loop.results())
    finally:
        loop.stop()
    assert [type(i).__name__ for i in items] == ["Idle", "Result", "Idle"]
    assert isinstance(items[0], Idle) and items[0].now_s == 7.0


@pytest.mark.slow
def test_bench_scene_prints_both_ratios_in_one_json_line(model_dir: Path, assets: Path) -> None:
    """The benchmark's shape (its figures are measured by running it, never asserted here)."""
    import json

    r = cli("bench", "scene", "--assets", str(assets), "--model-dir", str(model_dir), "--frames", "20",
            "--rounds", "1", "--objects", "5", "--threads", "1")
    assert r.returncode == 0, r.stderr
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    assert figures["bench"] == "scene" and figures["threads"] == 1 and figures["frames"] == 20
    assert figures["ratio_invoke_target"] == 0.95 and figures["ratio_target"] == 1.0
    assert figures["agent_fps"] > 0 and figures["bare_fps"] > 0 and figures["invoke_ms"] > 0
    assert figures["ratio_invoke"] == pytest.approx(figures["agent_fps"] * figures["invoke_ms"] / 1000, rel=0.01)
    assert figures["ratio"] == pytest.approx(figures["agent_fps"] / figures["bare_fps"], rel=0.01)
