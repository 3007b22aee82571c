"""Frame -> model input tensor: resize or letterbox, channel order, privacy masks, input quantization.

Everything that depends on the frame size (scale, padding, mask pixels, box mapping, the views
into the input tensor, which stays where it is: agent/detect/runtime.pinned) is computed once per
frame size; per frame there is one cv2.resize (straight into the interpreter's input tensor
unless a channel swap or a general table needs a scratch buffer first), an optional mask fill,
a channel swap only when the frame's order is not the model's, and an optional 256-entry lookup
table. The common int8 case (zero point
-128, scale 1: the byte is the pixel with its top bit flipped) is one XOR instead of a table
lookup, applied in place after the swap (measured after an invoke, YOLOX 416: swap + table 0.11 ms,
swap + XOR 0.04 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import cv2
import numpy as np

from agent.detect.masks import Polygon, rasterize

PAD_VALUE = 114  # YOLO letterbox grey
MASK_VALUE = 0  # masked pixels are black before inference


def quant_table(dtype: Any, scale: float, zero_point: int, mean: float, std: float) -> np.ndarray | None:
    """uint8 pixel -> the model's quantized input (as raw bytes), or None when that is the identity."""
    dtype = np.dtype(dtype)
    pixels = np.arange(256, dtype=np.float64)
    if dtype == np.uint8 and scale == 0.0:
        return None  # unquantized uint8 input: raw pixels
    if dtype not in (np.dtype(np.uint8), np.dtype(np.int8)):
        raise ValueError(f"input type {dtype.name} is not supported (uint8 or int8 quantized models)")
    info = np.iinfo(dtype)
    q = np.clip(np.round((pixels - mean) / std / scale + zero_point), info.min, info.max).astype(dtype)
    raw = q.view(np.uint8)
    if np.array_equal(raw, pixels.astype(np.uint8)):
        return None
    return raw.reshape(256, 1).astype(np.uint8)


def xor_constant(table: np.ndarray | None) -> int | None:
    """k when the table maps every byte b to b ^ k (int8 inputs with zero point -128: k = 0x80)."""
    if table is None:
        return None
    k = int(table[0, 0])
    return k if np.array_equal(table[:, 0], np.arange(256, dtype=np.uint8) ^ np.uint8(k)) else None


@dataclass(frozen=True)
class Geometry:
    """How one frame size maps onto the model input, and how boxes map back."""

    new_w: int
    new_h: int
    pad_x: int
    pad_y: int
    mapping: tuple[float, float, float, float]  # sx, sy, ox, oy: image x = input x * sx + ox
    mask: np.ndarray | None  # new_h x new_w x 1 bool over the resized picture


@dataclass(frozen=True)
class _Plan:
    """Where one frame size's pixels go in one target: views prepared once, padding already written."""

    frame: tuple[Any, ...]  # the frame's shape, dtype and channel order
    masks: tuple[Polygon, ...]  # the masks the geometry was made with
    geometry: Geometry
    dsize: tuple[int, int]  # the resized picture's width, height
    resized: np.ndarray  # cv2.resize writes here
    swapped: np.ndarray | None  # the channel swap writes here (BGR models)
    inner: np.ndarray  # the picture's place in the target; the last step writes here


class Preprocessor:
    """Writes one frame (R, G, B or B, G, R) into the interpreter's input tensor."""

    def __init__(
        self,
        tensor: np.ndarray,
        in_w: int,
        in_h: int,
        letterbox: bool,
        table: np.ndarray | None,
        masks: Sequence[Polygon] = (),
        bgr: bool = False,
        pad: str = "centre",
    ) -> None:
        # One OpenCV thread: right after invoke() the interpreter's workers still spin on the other
        # cores, and OpenCV's own pool competing with them made the resize slower (measured: 0.56 ms
        # with the default pool, 0.43 ms with one thread, 1280x720 -> 300x300 just after an invoke).
        cv2.setNumThreads(1)
        # The input's bytes, [1,] H x W x 3: an array that stays valid across invoke()
        # (agent/detect/runtime.pinned), so the views into it are prepared once per frame size.
        self.tensor = tensor.view(np.uint8).reshape(in_h, in_w, 3)
        self.in_w, self.in_h = in_w, in_h
        self.letterbox = letterbox
        self.table = table
        self.masks = tuple(masks)
        if pad not in ("centre", "bottom_right"):
            raise ValueError(f"letterbox padding {pad!r} is not centre or bottom_right")
        self.pad_centre = pad == "centre"  # bottom_right: the picture at the top-left, as YOLOX trains
        self.order = "bgr" if bgr else "rgb"  # the model's channel order; a frame in the other is
        # swapped once, after the resize, on the model-sized picture
        xor = xor_constant(table)
        self.xor = None if xor is None else np.uint8(xor)  # the table as one XOR, or None
        # in_h x in_w x 3 scratch, made when first needed: one set for the input tensor (detect()),
        # one for `out` buffers (the frame loop's capture thread), so two threads never share one
        self._buffers: dict[tuple[str, bool], np.ndarray] = {}
        self.pad = np.uint8(PAD_VALUE if table is None else table[PAD_VALUE, 0])
        # per frame size: the masks it was made with and the geometry; a set_masks() on another
        # thread while one is being made can only leave an entry that is never used
        self._geo: dict[tuple[int, int], tuple[tuple[Polygon, ...], Geometry]] = {}
        # The plan for the input tensor, kept while its padding is there: the interpreter never
        # writes its input (tests/detect/test_quality.py checks every model), so the bands are
        # written again only when the frame size changes or someone else filled the tensor.
        self._plan: _Plan | None = None

    def set_masks(self, masks: Sequence[Polygon]) -> None:
        """New privacy masks from the next frame on (the setup view, a config re-read at a frame
        boundary, from any thread): geometries and plans made with other masks are not used again."""
        self.masks = tuple(masks)

    def tensor_replaced(self) -> None:
        """The input tensor was filled another way (set_tensor): write the padding next time."""
        self._plan = None

    def geometry(self, width: int, height: int, masks: tuple[Polygon, ...] | None = None) -> Geometry:
        masks = self.masks if masks is None else masks
        entry = self._geo.get((width, height))
        if entry is None or entry[0] is not masks:
            entry = self._geo[(width, height)] = (masks, self._make_geometry(width, height, masks))
        return entry[1]

    def _make_geometry(self, width: int, height: int, masks: tuple[Polygon, ...]) -> Geometry:
        if not self.letterbox:
            mask = rasterize(masks, self.in_w, self.in_h)
            return Geometry(self.in_w, self.in_h, 0, 0, (1.0, 1.0, 0.0, 0.0), mask)
        r = min(self.in_w / width, self.in_h / height)
        new_w, new_h = max(1, round(width * r)), max(1, round(height * r))
        pad_x, pad_y = ((self.in_w - new_w) // 2, (self.in_h - new_h) // 2) if self.pad_centre else (0, 0)
        # input-normalized u -> pixels u*in_w -> minus pad -> divide by the resized size
        mapping = (self.in_w / new_w, self.in_h / new_h, -pad_x / new_w, -pad_y / new_h)
        mask = rasterize(masks, new_w, new_h)  # over the resized picture, padding excluded
        return Geometry(new_w, new_h, pad_x, pad_y, mapping, mask)

    def _buffer(self, name: str, for_out: bool) -> np.ndarray:
        buf = self._buffers.get((name, for_out))
        if buf is None:
            buf = self._buffers[(name, for_out)] = np.empty((self.in_h, self.in_w, 3), np.uint8)
        return buf

    def _make_plan(self, target: np.ndarray, image: np.ndarray, channels: str, for_out: bool) -> _Plan:
        """Writes the letterbox padding into target (in_h x in_w x 3 bytes), already quantized so
        the table runs over the picture only, and prepares the views the picture goes through:
        resize, then a swap when the frame's order is not the model's, then XOR or table; each
        step in place in the target where it can be."""
        if channels not in ("rgb", "bgr"):
            raise ValueError(f"frame channels {channels!r} is not rgb or bgr")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            # cv2.resize would leave the input as it was and return a new array: never silently
            raise ValueError(f"a frame must be H x W x 3 uint8, not {image.shape} {image.dtype}")
        height, width = image.shape[:2]
        masks = self.masks
        geo = self.geometry(width, height, masks)
        x0, y0, nw, nh = geo.pad_x, geo.pad_y, geo.new_w, geo.new_h
        if self.letterbox:
            if y0:
                target[:y0] = self.pad
            if y0 + nh < self.in_h:
                target[y0 + nh :] = self.pad
            if x0:
                target[:, :x0] = self.pad
            if x0 + nw < self.in_w:
                target[:, x0 + nw :] = self.pad
        inner = target[y0 : y0 + nh, x0 : x0 + nw]
        in_place = self.table is None or self.xor is not None  # the last step can run on the target
        swap = channels != self.order
        resized = inner if in_place and not swap else self._buffer("resized", for_out)[:nh, :nw]
        swapped = None
        if swap:
            swapped = inner if in_place else self._buffer("swapped", for_out)[:nh, :nw]
        return _Plan((image.shape, image.dtype, channels), masks, geo, (nw, nh), resized, swapped, inner)

    def write(self, image: np.ndarray, out: np.ndarray | None = None, channels: str = "rgb") -> Geometry:
        """Resize (or letterbox) the H x W x 3 uint8 image, its channels in `channels` order, into
        the model input, or into `out` (in_h x in_w x 3 uint8: the input's bytes, for a thread
        that must not touch the interpreter while it runs; the frame loop's capture thread)."""
        plan = self._plan
        if out is not None:
            plan = self._make_plan(out, image, channels, for_out=True)
        elif plan is None or plan.frame != (image.shape, image.dtype, channels) or plan.masks is not self.masks:
            plan = self._plan = self._make_plan(self.tensor, image, channels, for_out=False)
        # Right after invoke() each Python or numpy call costs microseconds (cold caches): per
        # frame only the calls below, on views prepared with the plan.
        picture = plan.resized
        cv2.resize(image, plan.dsize, dst=picture, interpolation=cv2.INTER_LINEAR)
        mask = plan.geometry.mask
        if mask is not None:
            np.copyto(picture, np.uint8(MASK_VALUE), where=mask)
        if plan.swapped is not None:  # R, G, B <-> B, G, R: the same swap either way
            picture = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR, dst=plan.swapped)
        if self.xor is not None:
            np.bitwise_xor(picture, self.xor, out=plan.inner)
        elif self.table is not None:
            cv2.LUT(picture, self.table, dst=plan.inner)
        return plan.geometry
