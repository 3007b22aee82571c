"""A run that ends on a mistake said in one line (a file in a replayed folder that is not an image,
a TLS file or an ingest key file that is missing) closes its outbox: the next start does not count
it as a power cut or a crash (`unclean_stops` in the heartbeat stays for those)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from agent.delivery.outbox import Outbox
from tests.helpers import cli


def unclean_on_record(state: Path) -> bool:
    """What the next start finds: the mark of a run that never closed its outbox."""
    outbox = Outbox(state / "outbox.db")
    try:
        outbox.start_boot()
        return outbox.previous_unclean or outbox.unclean_stops > 0
    finally:
        outbox.close()


def scripted(tmp_path: Path) -> Path:
    script = tmp_path / "detections.jsonl"  # nobody in any frame: no model needed
    script.write_text("")
    return script


def test_a_folder_with_a_file_that_is_not_an_image(assets: Path, tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    folder.mkdir()
    shutil.copy(assets / "images" / "zidane.jpg", folder / "a.jpg")
    (folder / "b.jpg").write_text("not a picture")
    state, script = tmp_path / "state", scripted(tmp_path)
    bad = cli("replay", str(folder), "--state", str(state), "--detections", str(script))
    assert bad.returncode == 2 and "b.jpg is not an image" in bad.stderr, bad.stderr
    assert not unclean_on_record(state)


@pytest.mark.parametrize("mistake", ["tls-ca", "ingest-keys"])
def test_a_missing_file_found_at_start(clip: Path, tmp_path: Path, mistake: str) -> None:
    state, script = tmp_path / "state", scripted(tmp_path)
    config = tmp_path / "agent.toml"
    body = (f'[device]\nid = "cam-1"\nsite = "depot-3"\n[source]\nkind = "replay"\npath = "{clip}"\nmax_frames = 3\n'
            f'[detector]\nbackend = "scripted"\nscript = "{script}"\n')
    if mistake == "tls-ca":
        body += f'[mqtt]\nhost = "127.0.0.1"\nport = 1\ntls = true\nca_file = "{tmp_path / "missing.pem"}"\n'
        says = "missing.pem"
    else:
        body += (f'[outbox]\nack = "ingest"\ningest_keys = "{tmp_path / "missing.json"}"\n'
                 '[mqtt]\nhost = "127.0.0.1"\nport = 1\n')
        says = "missing.json"
    config.write_text(body)
    keys = cli("keygen", "--out", str(tmp_path / "etc"), "--device-id", "cam-1", "--site", "depot-3")
    assert keys.returncode == 0, keys.stderr
    common = ["--config", str(config), "--state", str(state), "--key", str(tmp_path / "etc" / "device.key")]
    bad = cli("run", *common)
    assert bad.returncode == 2 and says in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert (state / "outbox.db").is_file() and not unclean_on_record(state)


def test_events_out_is_kept_when_the_start_fails(clip: Path, tmp_path: Path) -> None:
    # the previous run's lines go only once every start-up check has passed
    script = scripted(tmp_path)
    config = tmp_path / "agent.toml"
    config.write_text(f'[mqtt]\nhost = "127.0.0.1"\nport = 1\ntls = true\nca_file = "{tmp_path / "missing.pem"}"\n')
    events = tmp_path / "events.jsonl"
    events.write_text('{"earlier": "run"}\n')
    bad = cli("replay", str(clip), "--config", str(config), "--state", str(tmp_path / "state"), "--publish",
              "--detections", str(script), "--events-out", str(events))
    assert bad.returncode == 2 and "missing.pem" in bad.stderr, bad.stderr
    assert events.read_text() == '{"earlier": "run"}\n'
