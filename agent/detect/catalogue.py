"""The model catalogue (models/manifest.toml): which models and samples exist and their pinned hashes."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from agent.assets import Pinned
from agent.errors import ModelError, UsageError


def models_dir() -> Path:
    """models/ from the source tree, or the copy packed into the wheel as agent/_models."""
    packed = Path(str(resources.files("agent"))) / "_models"
    if packed.is_dir():
        return packed
    return Path(__file__).resolve().parents[2] / "models"


@dataclass(frozen=True)
class ModelSpec:
    id: str
    file: str
    sha256: str
    sha256_checked: bool
    urls: tuple[str, ...]
    input: tuple[int, int]  # width, height
    dtype: str
    quantization: tuple[float, int]
    resize: str  # stretch | letterbox
    decoder: str  # ssd_postprocess | yolov5 | yolov8 | yolox
    labels: str
    licence: str
    edgetpu: str = ""  # id of the Edge TPU twin
    cpu_twin: str = ""  # for an _edgetpu model: its CPU twin
    bundle_ok: bool = True
    input_mean: float = 0.0  # the model wants (pixel - mean) / std, then its input quantization
    input_std: float = 255.0
    channels: str = "rgb"  # rgb | bgr: the channel order the model was trained on
    pad: str = "centre"  # letterbox padding: centre | bottom_right (YOLOX)
    notice: str = ""  # licence file that must travel with the model (installed as <file>.LICENSE)
    notice_sha256: str = ""
    notice_urls: tuple[str, ...] = ()

    @property
    def pinned(self) -> Pinned:
        return Pinned(self.id, self.file, self.sha256, self.urls, self.sha256_checked)

    @property
    def labels_path(self) -> Path:
        return models_dir() / self.labels

    @property
    def is_edgetpu(self) -> bool:
        return self.id.endswith("_edgetpu") or bool(self.cpu_twin)

    @property
    def hash_status(self) -> str:
        """checked | unchecked (a hash from elsewhere) | unknown (no hash: trust on first use)."""
        if not self.sha256:
            return "unknown"
        return "checked" if self.sha256_checked else "unchecked"


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    path = models_dir() / "manifest.toml"
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def models() -> dict[str, ModelSpec]:
    out = {}
    for m in _raw().get("model", []):
        known = {k: v for k, v in m.items() if k in ModelSpec.__dataclass_fields__}
        known["urls"] = tuple(known.get("urls", ()))
        known["notice_urls"] = tuple(known.get("notice_urls", ()))
        known["input"] = tuple(known["input"])
        known["quantization"] = tuple(known.get("quantization", (0.0, 0)))
        for key in ("input_mean", "input_std"):
            if key in known:
                known[key] = float(known[key])
        out[m["id"]] = ModelSpec(**known)
    return out


def default_model() -> str:
    return str(_raw()["default"])


def model(model_id: str) -> ModelSpec:
    table = models()
    if model_id not in table:
        raise ModelError(f"unknown model {model_id!r}; `edge-agent models list` shows the known ones")
    return table[model_id]


def samples() -> dict[str, Pinned]:
    return {
        s["id"]: Pinned(s["id"], s["file"], s["sha256"], tuple(s.get("urls", ())), s.get("sha256_checked", True))
        for s in _raw().get("sample", [])
    }


def sample(sample_id: str) -> Pinned:
    table = samples()
    if sample_id not in table:
        raise UsageError(f"unknown sample {sample_id!r}; known: {', '.join(table)}")
    return table[sample_id]
