"""`edge-agent detect IMAGE...`: run the configured detector on still images, for technicians."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent import config
from agent.commands import add_config_args, load_config, with_detector_options
from agent.capture import IMAGE_SUFFIXES
from agent.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("detect", help="detect objects in still images (boxes normalized, origin top-left)")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (JPEG, PNG, BMP, ...) or folders (every image in them)")
    p.add_argument("--model", metavar="ID", help="model id from `edge-agent models list` (default: config)")
    p.add_argument("--model-file", metavar="FILE",
                   help="run a model file outside the manifest (decoder guessed from its outputs; no hash check)")
    p.add_argument("--model-dir", metavar="DIR", help="where installed models live (default: config)")
    p.add_argument("--threshold", type=float, metavar="S", help="score threshold (default: config)")
    p.add_argument("--all-classes", action="store_true", help="report every class, not only the allow-list")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    add_config_args(p)
    p.set_defaults(func=main)




def expand(paths: list[str]) -> list[str | UsageError]:
    """Each argument, a folder replaced by the images in it (sorted); a folder without any is an error."""
    out: list[str | UsageError] = []
    for path in paths:
        p = Path(path)
        if not p.is_dir():
            out.append(path)
            continue
        found = sorted(str(f) for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        out.extend(found or [UsageError(f"folder {path!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")])
    return out


def read_image(path: str) -> Any:
    """An RGB uint8 array, or one UsageError line (missing file, not an image)."""
    import cv2
    import numpy as np

    p = Path(path)
    if p.exists() and not p.is_file():
        raise UsageError(f"{path!r} is not a picture file (a device or a special file); give a JPEG or PNG file")
    if not p.is_file():
        raise UsageError(f"image {path!r} not found")
    try:
        data = np.fromfile(p, np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except (OSError, cv2.error):
        bgr = None
    if bgr is None:
        raise UsageError(f"{path!r} is not an image OpenCV can decode (JPEG, PNG, BMP, ...)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def main(args: argparse.Namespace) -> int:
    from agent.detect import Detector
    from agent.detect.factory import build_detector
    from agent.types import Frame

    cfg = with_detector_options(load_config(args), model=args.model or None, model_dir=args.model_dir or None,
                                score_threshold=args.threshold)
    # every input is read first: bad ones are reported one line each (the good ones still run), and
    # when none is good the model is never loaded
    images: list[tuple[str, Any]] = []
    for item in expand(args.images):
        if isinstance(item, UsageError):
            images.append(("", item))
            continue
        try:
            images.append((item, read_image(item)))
        except UsageError as exc:
            images.append((item, exc))
    if all(isinstance(image, UsageError) for _, image in images):
        for _, bad in images:
            report_error(bad)
        return 2

    if args.model_file:
        from agent.detect.tflite import TfliteDetector, loose_spec

        d = cfg.detector
        model_file = Path(args.model_file)
        if not model_file.is_file():
            raise UsageError(f"model file {args.model_file!r} not found")
        detector: Detector = TfliteDetector(
            loose_spec(model_file), model_file, d.interpreter_threads, d.score_threshold,
            None if args.all_classes else d.classes,
            labels_path=Path(d.labels) if d.labels else None, masks=cfg.privacy.masks,
            nms_iou=d.nms_iou, max_detections=d.max_detections,
        )
    else:
        if args.all_classes:
            cfg = config.replace(cfg, detector={"classes": ()})
        detector = build_detector(cfg, all_classes=args.all_classes)

    failed = 0
    for i, (path, image) in enumerate(images):
        if isinstance(image, UsageError):
            failed += 1
            report_error(image)
            continue
        found = detector.detect(Frame(image, 0.0, i))
        if args.json:
            print(json.dumps({
                "image": path,
                "model": detector.model_id,
                "detections": [
                    {"label": f.label, "score": round(f.score, 3), "box": [round(v, 4) for v in f.box.as_list()]}
                    for f in found
                ],
            }), flush=True)
        else:
            print(f"{path}: {len(found)} detection(s) [{detector.model_id}]")
            for f in found:
                box = ", ".join(f"{v:.3f}" for v in f.box.as_list())
                print(f"  {f.label:14s} {f.score:.2f}  [{box}]", flush=True)
    if failed:
        sys.stderr.write(f"edge-agent: {failed} of {len(images)} image(s) could not be read (see above)\n")
    return 2 if failed else 0


def report_error(exc: UsageError) -> None:
    sys.stderr.write(f"edge-agent: error: {exc}\n")
    sys.stderr.flush()
