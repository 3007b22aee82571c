"""The TFLite detector: pre-process into the input tensor, invoke, decode, map boxes back."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from agent.detect.decoders import DECODERS, guess_decoder
from agent.detect.masks import Polygon
from agent.detect.preprocess import Preprocessor, quant_table
from agent.detect.runtime import PinnedTensors, load_interpreter, pinned, tensors_stay
from agent.errors import ModelError
from agent.detect.catalogue import ModelSpec
from agent.types import Box, Detection, Frame

if TYPE_CHECKING:  # pragma: no cover
    from agent.detect.staged import StagedDetector


def read_labels(path: Path) -> list[str]:
    try:
        labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except FileNotFoundError:
        raise ModelError(f"labels file {str(path)!r} not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read labels file {str(path)!r}: {exc.__class__.__name__}") from None
    while labels and not labels[-1]:
        labels.pop()
    if not labels:
        raise ModelError(f"labels file {str(path)!r} is empty")
    return labels


DEFAULT_LABELS = {"ssd_postprocess": "coco_labels_90.txt", "yolov5": "coco_labels_80.txt",
                  "yolov8": "coco_labels_80.txt", "yolox": "coco_labels_80.txt"}


def loose_spec(path: Path) -> ModelSpec:
    """A spec for a model file outside the manifest (`edge-agent detect --model-file`).

    The decoder is guessed from the output shapes, the pre-processing from the decoder, and the
    labels default to COCO. No hash is checked: the technician named the file.
    """
    return ModelSpec(
        id=path.stem, file=path.name, sha256="", sha256_checked=False, urls=(), input=(0, 0),
        dtype="", quantization=(0.0, 0), resize="", decoder="", labels="", licence="unknown",
    )


def _fill_loose(spec: ModelSpec, decoder: str) -> ModelSpec:
    if decoder == "yolox":  # YOLOX's own convention: 0..255 BGR pixels, letterbox padded bottom/right
        return dataclasses.replace(spec, decoder=decoder, labels=DEFAULT_LABELS[decoder], resize="letterbox",
                                   input_mean=0.0, input_std=1.0, channels="bgr", pad="bottom_right")
    yolo = decoder.startswith("yolo")
    return dataclasses.replace(
        spec, decoder=decoder, labels=DEFAULT_LABELS[decoder], resize="letterbox" if yolo else "stretch",
        input_mean=0.0 if yolo else 128.0, input_std=255.0 if yolo else 128.0,
    )


class TfliteDetector:
    """Runs one model on the CPU or through a delegate (the Edge TPU)."""

    def __init__(
        self,
        spec: ModelSpec,
        model_path: Path,
        threads: int = 2,
        score_threshold: float = 0.5,
        classes: tuple[str, ...] | None = ("person",),
        *,
        delegates: list[Any] | None = None,
        labels_path: Path | None = None,
        masks: Sequence[Polygon] = (),
        nms_iou: float = 0.45,
        max_detections: int = 100,
        health: dict[str, Any] | None = None,
        model_sha256: str = "",
    ) -> None:
        self.model_id = spec.id
        self.model_sha256 = model_sha256  # of model_path, checked by the caller ("": a loose file)
        self.spec = spec
        if spec.is_edgetpu and not delegates:
            raise ModelError(
                f"{spec.id} is compiled for the Edge TPU and is never run on the CPU; "
                f"use {spec.cpu_twin or 'its CPU twin'} or set detector.delegate = \"edgetpu\""
            )
        if classes is not None and not classes:
            raise ModelError("detector.classes is empty: nothing could ever be detected")
        self.interp = load_interpreter(model_path, threads, delegates)
        name = spec.decoder or guess_decoder(self.interp.get_output_details(), self.interp.get_input_details())
        if name not in DECODERS:
            raise ModelError(f"{spec.id}: its outputs fit no decoder ({', '.join(DECODERS)})")
        if not spec.decoder:  # a loose file: pre-processing and default labels follow the decoder
            spec = self.spec = _fill_loose(spec, name)
        self.labels = read_labels(labels_path or spec.labels_path)
        if classes is None:  # every class the labels name (technicians' `detect --all-classes`)
            classes = tuple(lab for lab in self.labels if lab and lab != "n/a")
        unknown = [c for c in classes if c not in self.labels]
        if unknown:
            raise ModelError(f"class {unknown[0]!r} is not in {spec.id}'s labels")
        self.allowed = np.array([lab in classes for lab in self.labels], dtype=bool)
        self._health = dict(health or {"accelerator": 1 if delegates else 0,
                                       "delegate": "edgetpu" if delegates else "cpu", "fallback": ""})
        self._health.setdefault("model", spec.id)

        inputs = self.interp.get_input_details()
        if len(inputs) != 1 or len(inputs[0]["shape"]) != 4 or int(inputs[0]["shape"][3]) != 3:
            raise ModelError(f"{spec.id}: expected one 1 x H x W x 3 image input")
        inp = inputs[0]
        _, self.in_h, self.in_w, _ = (int(v) for v in inp["shape"])
        scale, zero = inp.get("quantization", (0.0, 0))
        try:
            table = quant_table(inp["dtype"], float(scale), int(zero), spec.input_mean, spec.input_std)
        except ValueError as exc:
            raise ModelError(f"{spec.id}: {exc}") from None

        # Kept so the frame loop can build a second decoder that reads copied outputs
        # (agent/detect/staged.py) while the interpreter already runs the next frame.
        self.make_decoder = functools.partial(
            DECODERS[name], score_threshold=score_threshold, allowed=self.allowed,
            nms_iou=nms_iou, max_detections=max_detections,
        )
        self.input_index, self.input_dtype = int(inp["index"]), np.dtype(inp["dtype"])
        # The detect step works on arrays over the interpreter's own input and output memory
        # (runtime.pinned) when its tensors stay in place, as every model in the manifest does.
        # A file whose runtime moves them (a loose `--model-file`) goes the frame loop's way
        # instead: its own input buffer, set_tensor(), copies of the outputs.
        outputs = [int(d["index"]) for d in self.interp.get_output_details()]
        stable = tensors_stay(self.interp, [self.input_index, *outputs])
        self.outputs = PinnedTensors(self.interp)
        self._copying: StagedDetector | None = None
        try:
            if stable:
                self.decode = self.make_decoder(self.outputs)
            else:
                self._copying = self.stages()
                self.decode = self._copying.decode  # reads the copies the last infer() made
        except ValueError as exc:
            raise ModelError(f"{spec.id}: its outputs fit no decoder ({name}: {exc})") from None
        self.pre = Preprocessor(
            pinned(self.interp, self.input_index) if stable else np.zeros((self.in_h, self.in_w, 3), np.uint8),
            self.in_w, self.in_h, letterbox=spec.resize == "letterbox", table=table, masks=masks,
            bgr=spec.channels == "bgr", pad=spec.pad,
        )

    def health(self) -> dict[str, Any]:
        """{"accelerator": 0/1, "delegate": "cpu"|"edgetpu", "fallback": reason or "", "model": id}."""
        return dict(self._health)

    def detect(self, frame: Frame) -> list[Detection]:
        if self._copying is not None:  # tensors that move: through copies, never pinned arrays
            steps = self._copying
            return steps.detections(steps.infer(steps.prepare(frame)))
        geo = self.pre.write(frame.image, channels=frame.channels)
        self.interp.invoke()
        return self.to_detections(self.decode(), geo.mapping)

    def set_masks(self, masks: Sequence[Sequence[tuple[float, float]]]) -> bool:
        """New privacy masks from the next prepared frame on (both loops share the preprocessor)."""
        self.pre.set_masks([tuple(p) for p in masks])
        return True

    def stages(self) -> StagedDetector:
        """The same detection split into prepare / infer / detections, for the threaded frame loop."""
        from agent.detect.staged import StagedDetector

        return StagedDetector(self)

    def to_detections(
        self, rows: list[tuple[float, float, float, float, float, int]],
        mapping: tuple[float, float, float, float],
    ) -> list[Detection]:
        """Decoder rows [(x0, y0, x1, y1, score, class_id)] in model-input coordinates -> Detections."""
        if not rows:
            return []
        sx, sy, ox, oy = mapping
        labels = self.labels
        out = []
        for x0, y0, x1, y1, s, c in rows:
            box = Box(
                min(max(x0 * sx + ox, 0.0), 1.0), min(max(y0 * sy + oy, 0.0), 1.0),
                min(max(x1 * sx + ox, 0.0), 1.0), min(max(y1 * sy + oy, 0.0), 1.0),
            )
            out.append(Detection(labels[c], s, box, c))
        return out
