"""The TFLite detector: pre-process (RGB, resize, quantize), invoke, decode, class allow-list."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from agent.detect.runtime import load_interpreter
from agent.detect.ssd import decode_ssd, order_outputs
from agent.errors import ModelError
from agent.manifest import ModelSpec
from agent.types import Box, Detection, Frame


def read_labels(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except FileNotFoundError:
        raise ModelError(f"labels file {str(path)!r} not found") from None


class TfliteDetector:
    """Runs one model on the CPU. Issue 3 adds the YOLO decoders and the Edge TPU delegate."""

    def __init__(
        self,
        spec: ModelSpec,
        model_path: Path,
        threads: int = 2,
        score_threshold: float = 0.5,
        classes: tuple[str, ...] = ("person",),
    ) -> None:
        self.model_id = spec.id
        self.spec = spec
        self.labels = read_labels(spec.labels_path)
        unknown = [c for c in classes if c not in self.labels]
        if unknown:
            raise ModelError(f"class {unknown[0]!r} is not in {spec.id}'s labels")
        self.allowed = np.array([lab in classes for lab in self.labels], dtype=bool)
        self.score_threshold = score_threshold
        self.interp = load_interpreter(model_path, threads)
        inp = self.interp.get_input_details()[0]
        self.input_index = inp["index"]
        _, self.in_h, self.in_w, _ = (int(v) for v in inp["shape"])
        self.input_dtype = inp["dtype"]
        if spec.decoder != "ssd_postprocess":
            raise ModelError(f"decoder {spec.decoder!r} is not available yet")
        try:
            self.output_indices = order_outputs(self.interp.get_output_details())
        except ValueError as exc:
            raise ModelError(f"{spec.id}: {exc}") from None

    def preprocess(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 H x W x 3 -> the model's input tensor (1 x h x w x 3)."""
        resized = cv2.resize(image, (self.in_w, self.in_h), interpolation=cv2.INTER_LINEAR)
        return resized[np.newaxis]

    def detect(self, frame: Frame) -> list[Detection]:
        self.interp.set_tensor(self.input_index, self.preprocess(frame.image))
        self.interp.invoke()
        outs = [self.interp.get_tensor(i) for i in self.output_indices]
        boxes, scores, ids = decode_ssd(outs, self.score_threshold, self.allowed)
        return [
            Detection(self.labels[c], float(s), Box(*map(float, b)), int(c))
            for b, s, c in zip(boxes, scores, ids)
        ]
