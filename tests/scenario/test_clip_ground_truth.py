"""The real pipeline (real SSD model, tracker, rules, signing) on a real clip, against a person's count.

Ground truth for one-by-one-person-detection.mp4 (768x432, 10 fps, 1394 frames), written by
watching contact sheets of every 10th frame: six people visit a small round table one at a
time, never two at once. Each walks in from the bottom left of the picture, stands at the
table (x about 0.5-0.65), then leaves through the right edge. Frame ranges are inclusive.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent import config
from agent.protocol.enrolment import load_registry
from agent.central.verify import Verifier


@dataclass(frozen=True)
class Visit:
    who: str
    appears: tuple[int, int]  # first seen within this range
    at_table: tuple[int, int]  # standing still at the table
    leaves: tuple[int, int]  # walks out through the right edge within this range


GROUND_TRUTH = (
    Visit("woman, grey cardigan", (60, 75), (80, 180), (185, 200)),
    Visit("man, black jacket", (225, 240), (240, 430), (435, 450)),
    Visit("woman, black outfit, long hair", (505, 520), (520, 680), (685, 700)),
    Visit("man, black t-shirt", (745, 760), (770, 850), (855, 870)),
    Visit("woman, grey sweater", (925, 940), (940, 1170), (1175, 1200)),
    Visit("man, grey shirt", (1235, 1250), (1250, 1340), (1345, 1360)),
)

CONFIG = """
[detector]
model_dir = "{model_dir}"

[[zones]]
id = "table"
polygon = [[0.30, 0.05], [0.85, 0.05], [0.85, 1.0], [0.30, 1.0]]
classes = ["person"]
loiter_after_s = 8
gathering_threshold = 2

[[lines]]
id = "exit"
points = [[0.75, 0.0], [0.75, 1.0]]   # drawn downwards: walking out to the right is "out"
"""


@dataclass
class Run:
    observations: list[tuple[int, object]]  # (frame index, Observation)
    envelopes: list[bytes]
    registry: Path
    frames: int


@pytest.fixture(scope="session")
def clip_run(tmp_path_factory: pytest.TempPathFactory, model_dir: Path, clip: Path) -> Run:
    """The clip through assemble()'s pipeline once per session (about 15-30 s)."""
    from agent.assembly import assemble

    tmp = tmp_path_factory.mktemp("clip")
    cfg_file = tmp / "agent.toml"
    cfg_file.write_text(CONFIG.format(model_dir=model_dir))
    cfg = config.replace(config.load(cfg_file), device={"state_dir": str(tmp / "state")},
                         source={"kind": "replay", "path": str(clip)})
    events = tmp / "events.jsonl"
    asm = assemble(cfg, lambda s: None, events, throwaway_key=True)
    p = asm.pipeline
    seen: list[tuple[int, object]] = []
    n = 0
    last = 0
    for frame in p.source.frames():
        seen += [(frame.index, o) for o in p.step(frame)]
        n += 1
        last = frame.index
    seen += [(last, o) for o in p.finish()]
    p.source.close()
    assert asm.events_out is not None
    asm.events_out.close()
    asm.outbox.close()
    return Run(seen, events.read_bytes().splitlines(), tmp / "state" / "device.pub.json", n)


def of_type(run: Run, kind: str) -> list[tuple[int, object]]:
    return [(f, o) for f, o in run.observations if o.type == kind]  # type: ignore[attr-defined]


def within(frame: int, span: tuple[int, int], slack: int = 0) -> bool:
    return span[0] - slack <= frame <= span[1] + slack


@pytest.mark.slow
def test_every_frame_is_processed_and_every_envelope_verifies(clip_run: Run) -> None:
    assert clip_run.frames == 1394
    verifier = Verifier(load_registry(clip_run.registry))
    events = [verifier.check(line)[0] for line in clip_run.envelopes]
    assert len(events) == len(clip_run.observations)
    assert Counter(e["type"] for e in events) == Counter(o.type for _, o in clip_run.observations)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_six_people_leave_through_the_exit_line_once_each(clip_run: Run) -> None:
    crossings = of_type(clip_run, "line_crossing")
    assert len(crossings) == len(GROUND_TRUTH) == 6
    for (frame, obs), visit in zip(crossings, GROUND_TRUTH):
        assert obs.direction == "out", visit.who  # type: ignore[attr-defined]
        assert within(frame, visit.leaves, slack=5), f"{visit.who}: crossed at frame {frame}"


@pytest.mark.slow
def test_each_visit_loiters_once_with_its_dwell(clip_run: Run) -> None:
    starts = of_type(clip_run, "loitering_start")
    ends = of_type(clip_run, "loitering_end")
    assert len(starts) == len(ends) == 6
    for (fs, _), (fe, end), visit in zip(starts, ends, GROUND_TRUTH):
        assert visit.appears[0] + 80 <= fs <= visit.leaves[0], f"{visit.who}: loitering from frame {fs}"
        assert within(fe, visit.leaves, slack=10), f"{visit.who}: visit ended at frame {fe}"
        # every visit lasts 11-26 s: the [10, 30) bucket
        assert (end.values["dwell_s_min"], end.values["dwell_s_max"]) == (10, 30), visit.who  # type: ignore[attr-defined]


@pytest.mark.slow
def test_occupancy_goes_one_then_zero_six_times_and_no_gathering(clip_run: Run) -> None:
    occ = of_type(clip_run, "occupancy")
    counts = [o.values["count"] for _, o in occ]  # type: ignore[attr-defined]
    changes = [c for i, c in enumerate(counts) if i == 0 or c != counts[i - 1]]
    assert changes == [1, 0] * 6
    arrivals = [f for i, (f, _) in enumerate(occ) if counts[i] == 1 and (i == 0 or counts[i - 1] == 0)]
    assert len(arrivals) == 6
    for frame, visit in zip(arrivals, GROUND_TRUTH):
        assert within(frame, visit.appears, slack=10), f"{visit.who}: counted from frame {frame}"
    assert of_type(clip_run, "gathering_start") == []
    assert of_type(clip_run, "unattended_object") == []


@pytest.mark.slow
def test_zone_counts_six_entries_and_six_exits(clip_run: Run) -> None:
    counts = of_type(clip_run, "count")
    assert sum(o.values["entries"] for _, o in counts) == 6  # type: ignore[attr-defined]
    assert sum(o.values["exits"] for _, o in counts) == 6  # type: ignore[attr-defined]
