"""Detection in three steps that can run on three threads: prepare, infer, turn outputs into Detections.

`TfliteDetector.detect()` writes the frame into the interpreter's input, invokes and decodes
the outputs in place. The threaded frame loop (agent/frameloop.py) instead prepares frame k+1
on a capture thread and decodes frame k-1 on the caller's thread while frame k is being
inferred, so neither may touch the interpreter's buffers: `prepare` writes the input bytes into
a buffer of its own, `infer` copies them in, invokes and copies the outputs out, and
`detections` runs a second decoder over those copies. Same bytes in, same model, same decoder:
the detections are exactly those of `detect()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.detect.preprocess import Geometry
from agent.types import Detection, Frame

if TYPE_CHECKING:  # pragma: no cover
    from agent.detect.tflite import TfliteDetector


@dataclass(frozen=True)
class Prepared:
    """The model input a frame becomes (the input tensor's bytes) and its geometry."""

    pixels: np.ndarray
    geometry: Geometry


@dataclass(frozen=True)
class Inferred:
    """Copies of the model's outputs for one frame, and that frame's geometry."""

    outputs: dict[int, np.ndarray]
    geometry: Geometry


class OutputCopies:
    """Stands in for the interpreter in front of a decoder: the outputs of one invoke, copied.

    Decoders read outputs through get_tensor(i) or tensor(i)(); here both return the copies
    set by `use()`. Everything else (output details, signatures) is the interpreter's.
    """

    def __init__(self, interp: Any) -> None:
        self._interp = interp
        self.indices = [int(d["index"]) for d in interp.get_output_details()]
        self._arrays: dict[int, np.ndarray] = {}

    def copy_outputs(self) -> dict[int, np.ndarray]:
        """On the inference thread, right after invoke(): get_tensor() returns copies."""
        return {i: self._interp.get_tensor(i) for i in self.indices}

    def use(self, outputs: dict[int, np.ndarray]) -> None:
        self._arrays = outputs

    def get_tensor(self, index: int, *_: Any) -> np.ndarray:
        return self._arrays[index]

    def tensor(self, index: int) -> Callable[[], np.ndarray]:
        return lambda: self._arrays[index]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._interp, name)


class StagedDetector:
    """prepare (capture thread) -> infer (inference thread) -> detections (caller's thread).

    Each step is called from one thread only; the interpreter is touched by `infer` alone.
    """

    def __init__(self, det: TfliteDetector) -> None:
        self.det = det
        self.interp = det.interp
        self.copies = OutputCopies(det.interp)
        self.decode = det.make_decoder(self.copies)
        self.shape = (det.in_h, det.in_w, 3)

    def prepare(self, frame: Frame) -> Prepared:
        pixels = np.empty(self.shape, np.uint8)  # a fresh buffer: the previous one may still be queued
        geometry = self.det.pre.write(frame.image, out=pixels, channels=frame.channels)
        return Prepared(pixels, geometry)

    def infer(self, prepared: Prepared) -> Inferred:
        det = self.det
        self.interp.set_tensor(det.input_index, prepared.pixels.view(det.input_dtype)[np.newaxis])
        det.pre.tensor_replaced()  # detect() on this detector must write its padding again
        self.interp.invoke()
        return Inferred(self.copies.copy_outputs(), prepared.geometry)

    def detections(self, inferred: Inferred) -> list[Detection]:
        self.copies.use(inferred.outputs)
        return self.det.to_detections(self.decode(), inferred.geometry.mapping)
