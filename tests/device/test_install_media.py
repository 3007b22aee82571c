"""The models for an offline install: `hw/install.sh download` puts every board profile's model and
its licence notice beside the wheels, and the device's `models fetch --from` takes them from there."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from agent.detect import catalogue
from agent.device import install_media
from agent.errors import AssetError
from tests.helpers import ROOT, cli


def media(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.device.install_media", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_it_runs_on_the_standard_library_alone() -> None:
    # the technician's PC has no numpy, PyNaCl or OpenCV: importing it must not need them
    probe = ("import sys, agent.device.install_media as m; m.profile_models(); "
             "ours = {'agent', '__main__'}; "
             "print(sorted({n.split('.')[0] for n in sys.modules} - set(sys.stdlib_module_names) - ours))")
    # -S: no site-packages at all, as on a PC with a bare Python: an import of numpy would fail here
    out = subprocess.run([sys.executable, "-S", "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_every_profiles_model_lands_with_its_notice_and_the_device_installs_from_it(
    assets: Path, tmp_path: Path
) -> None:
    stick = tmp_path / "wheels"
    run = media(stick, "--from", assets / "models", "--offline")
    assert run.returncode == 0, run.stderr
    wanted = install_media.profile_models()
    assert catalogue.default_model() in wanted
    for model_id in wanted:
        spec = catalogue.model(model_id)
        line = next(x for x in run.stdout.splitlines() if x.startswith(f"{model_id}:"))
        if spec.hash_status != "checked":  # the Coral profiles' SSD v2: never on a stick unchecked
            assert "skipped" in line and "--accept-unchecked-hash" in line
            assert not (stick / spec.file).exists()
            continue
        assert sha(stick / spec.file) == spec.sha256
        if spec.notice:
            assert sha(stick / spec.notice) == spec.notice_sha256
    # AGPL weights are never put there unless named
    assert not (stick / catalogue.model("yolov8n_int8").file).exists()

    state = tmp_path / "state"
    got = cli("models", "fetch", catalogue.default_model(), "--from", str(stick), "--offline", "--state", str(state))
    assert got.returncode == 0, got.stderr
    spec = catalogue.model(catalogue.default_model())
    assert sha(state / "models" / f"{spec.file}.{spec.notice}") == spec.notice_sha256


def test_named_models_and_refusals(assets: Path, tmp_path: Path) -> None:
    stick = tmp_path / "wheels"
    agpl = media(stick, "--models", "yolov8n_int8", "--from", assets / "models", "--offline")
    assert agpl.returncode == 0 and "never bundled" in agpl.stdout and "AGPL" in agpl.stdout
    assert sha(stick / catalogue.model("yolov8n_int8").file) == catalogue.model("yolov8n_int8").sha256
    for args, says in (
        (["--models", "no_such_model"], "unknown model 'no_such_model'"),
        (["--models", "ssd_mobilenet_v2_coco_quant"], "--accept-unchecked-hash"),
        (["--models", catalogue.default_model(), "--offline"], "downloading is off"),
    ):
        run = media(tmp_path / "other", *args)
        assert run.returncode == 2, run
        assert run.stderr.count("\n") == 1 and says in run.stderr and "Traceback" not in run.stderr


def test_two_models_needing_different_notices_of_one_name_are_refused(
    assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = catalogue.models()
    a = specs["yolox_nano_ti_lite_416_int8"]
    b = dataclasses.replace(specs["yolox_nano_ti_lite_320_int8"], notice_sha256="0" * 64)
    monkeypatch.setattr(catalogue, "model", {a.id: a, b.id: b}.__getitem__)
    with pytest.raises(AssetError, match="another LICENSE"):
        install_media.put(tmp_path / "wheels", [a.id, b.id], True, [assets / "models"], False)
