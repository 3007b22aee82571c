"""The scripted detector: a real, selectable backend returning detections from a script, no model.

detector.backend = "scripted" reads detector.script, a JSON Lines file with one line per frame
that has detections (frames not listed have none):

    {"frame": 12, "detections": [{"label": "person", "score": 0.9, "box": [0.1, 0.2, 0.3, 0.8]}]}

Boxes are normalized (x0, y0, x1, y1), origin top-left. Tests and demos can also pass a function
of the frame. Classes outside the allow-list are dropped here, as the model backend drops them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from agent.errors import ConfigError
from agent.types import Box, Detection, Frame

MODEL_ID = "scripted"

Script = Callable[[Frame], Sequence[Detection]]


def _detection(item: Any, where: str) -> Detection:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: a detection must be an object with label, score and box")
    label, score, box = item.get("label"), item.get("score", 1.0), item.get("box")
    if not isinstance(label, str) or not label:
        raise ConfigError(f"{where}: label must be a class name")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
        raise ConfigError(f"{where}: score must be a number between 0 and 1")
    if (not isinstance(box, list) or len(box) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
        raise ConfigError(f"{where}: box must be [x0, y0, x1, y1]")
    x0, y0, x1, y1 = (float(v) for v in box)
    if not (0.0 <= x0 <= x1 <= 1.0 and 0.0 <= y0 <= y1 <= 1.0):
        raise ConfigError(f"{where}: box {box} is not normalized (0 <= x0 <= x1 <= 1, same for y)")
    return Detection(label, float(score), Box(x0, y0, x1, y1))


def parse_script(text: str, name: str) -> dict[int, list[Detection]]:
    """frame index -> detections, from JSON Lines text; ConfigError naming the line if malformed."""
    frames: dict[int, list[Detection]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}: not JSON ({exc.msg})") from None
        frame = row.get("frame") if isinstance(row, dict) else None
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
            raise ConfigError(f'{where}: needs "frame", a frame index >= 0')
        dets = row.get("detections", [])
        if not isinstance(dets, list):
            raise ConfigError(f'{where}: "detections" must be a list')
        frames.setdefault(frame, []).extend(_detection(d, where) for d in dets)
    return frames


class ScriptedDetector:
    """Detections from a script: a function of the frame, or a table frame index -> detections."""

    def __init__(
        self,
        script: Script | Mapping[int, Sequence[Detection]],
        classes: Sequence[str] | None = ("person",),
        *,
        model_id: str = MODEL_ID,
        model_sha256: str = "",
    ) -> None:
        if callable(script):
            self._script: Script = script
        else:
            table = {int(k): list(v) for k, v in script.items()}
            self._script = lambda frame: table.get(frame.index, [])
        self.classes = None if classes is None else frozenset(classes)
        self.model_id = model_id
        # the script's own hash when it came from a file: the privacy manifest cites what ran
        self.model_sha256 = model_sha256 or hashlib.sha256(model_id.encode()).hexdigest()

    @classmethod
    def from_file(cls, path: Path, classes: Sequence[str] | None = ("person",)) -> ScriptedDetector:
        """The script in a JSON Lines file; one clear line if it cannot be read or is malformed."""
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read detector.script {str(path)!r}: {exc.strerror}"
            ) from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"detector.script {str(path)!r} is not UTF-8 text") from None
        table = parse_script(text, path.name)
        return cls(table, classes, model_sha256=hashlib.sha256(data).hexdigest())

    def set_masks(self, masks: Sequence[Sequence[tuple[float, float]]]) -> bool:
        """A script sees no pixels: masks cannot act on it."""
        return False

    def stages(self) -> None:
        """A script has nothing to overlap: it runs on the caller's thread."""
        return None

    def detect(self, frame: Frame) -> list[Detection]:
        found = self._script(frame)
        if self.classes is None:
            return list(found)
        return [d for d in found if d.label in self.classes]

    def health(self) -> dict[str, Any]:
        return {"accelerator": 0, "delegate": "cpu", "fallback": "", "model": self.model_id}
