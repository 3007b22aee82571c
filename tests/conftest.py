"""Shared fixtures: the real assets folder, an installed default model, a real Mosquitto."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fixtures.mosquitto import Mosquitto, start_mosquitto  # noqa: E402

ASSETS = Path(os.environ.get("EDGE_AGENT_ASSETS", ROOT.parent / "shared" / "assets")).resolve()
CLIP = ASSETS / "video" / "one-by-one-person-detection.mp4"


@pytest.fixture(scope="session")
def assets() -> Path:
    if not (ASSETS / "SOURCES.md").is_file():
        pytest.fail(f"test assets not found at {ASSETS}; set EDGE_AGENT_ASSETS to the shared assets folder")
    return ASSETS


@pytest.fixture(scope="session")
def clip(assets: Path) -> Path:
    return CLIP


@pytest.fixture(scope="session")
def model_dir(assets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with the default model imported the way a technician would."""
    from agent.detect import catalogue
    from agent.assets import obtain

    d = tmp_path_factory.mktemp("models")
    obtain(catalogue.model(catalogue.default_model()).pinned, d, [assets / "models"], download=False)
    return d


@pytest.fixture
def mosquitto(tmp_path: Path):  # type: ignore[no-untyped-def]
    broker: Mosquitto = start_mosquitto(tmp_path / "mosquitto")
    try:
        yield broker
    finally:
        broker.stop()
