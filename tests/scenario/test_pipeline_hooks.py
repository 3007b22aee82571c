"""assemble(): the whole-scene default, the periodic tick hook, and end-of-stream flushing."""

from __future__ import annotations

from pathlib import Path

from agent import config
from agent.assembly import assemble
from agent.types import Observation


class Beat:
    """A periodic stage as issue 6's heartbeat will be: tick(now_s) once per frame."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.next_s = 0.0
        self.ticks = 0

    def tick(self, now_s: float) -> list[Observation]:
        self.ticks += 1
        if now_s < self.next_s:
            return []
        self.next_s = now_s + self.every_s
        return [Observation("heartbeat", "", "", now_s, {"frames": self.ticks})]


def test_periodic_stages_tick_every_frame_and_default_rules_need_no_zone(tmp_path: Path, model_dir: Path) -> None:
    cfg = config.replace(config.Config(), device={"state_dir": str(tmp_path)},
                         detector={"model_dir": str(model_dir)},
                         source={"kind": "synthetic", "max_frames": 12, "fps": 4.0})
    asm = assemble(cfg, lambda s: None, throwaway_key=True)
    beat = Beat(every_s=1.0)
    asm.pipeline.add_periodic(beat)
    summary = asm.pipeline.run()
    asm.outbox.close()
    assert summary.frames == 12 and beat.ticks == 12
    assert summary.events["heartbeat"] == 3  # t = 0, 1, 2 s at 4 frames/s
    assert [type(r).__name__ for r in asm.pipeline.rules] == ["Occupancy"]
    assert asm.pipeline.rules[0].rule_id == "scene"
