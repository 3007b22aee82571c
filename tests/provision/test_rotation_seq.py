"""Key rotation on a device whose outbox still holds rows: the rotation's seq is the outbox's own
next seq (above every stored one), so the ingest takes the queued old-key rows and the new key's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.central import enrolment as central
from agent.central import registry
from agent.central.verify import Verifier
from agent.delivery.outbox import Outbox
from agent.errors import SignatureError, UsageError
from agent.protocol.body import Event, encode
from agent.protocol.dsse import EVENT_PAYLOAD_TYPE, SigningKey
from agent.protocol.enrolment import KEY_FILE, PUB_FILE, enrolment, save_registry
from agent.protocol.provisioning import open_rotation
from agent.provision.device import ROTATION_FILE, DevicePaths, next_seq, rotate

DEVICE, SITE = "pi-1", "depot-3"


def event(key: SigningKey, seq: int) -> tuple[str, bytes]:
    ev = Event(id=f"{seq:032x}", device=DEVICE, site=SITE, seq=seq, boot=1, ts_ms=1000 + seq,
               type="count", model="m", manifest="0" * 64, rule="door", label="person",
               values={"entries": 1, "exits": 0})
    return f"edge/v1/{SITE}/{DEVICE}/event/count", key.envelope(EVENT_PAYLOAD_TYPE, encode(ev))


@pytest.mark.parametrize("acked", [[1, 2, 3], [1, 2, 3, 9, 10]], ids=["oldest-acked", "newest-acked-too"])
def test_rotation_starts_above_every_stored_seq_and_queued_old_rows_are_accepted(
        tmp_path: Path, acked: list[int]) -> None:
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    old = SigningKey.generate()
    old.save(etc / KEY_FILE)
    (etc / PUB_FILE).write_text(json.dumps(enrolment(old, DEVICE, SITE).to_json()))
    # -- the agent ran: ten events signed by the old key, some acknowledged, then it was stopped
    outbox = Outbox(state / "outbox.db")
    seqs = [outbox.append(lambda s: event(old, s)) for _ in range(10)]
    assert seqs == list(range(1, 11))
    outbox.ack(acked)
    outbox.close()
    queued = [s for s in seqs if s not in acked]
    # -- rotation on the device, then at the registry
    paths = DevicePaths(etc=etc, boot=(), media=(), state=state)
    said: list[str] = []
    assert next_seq(state) == 11
    rotate(paths, said.append)
    rot = open_rotation((etc / ROTATION_FILE).read_bytes(), {old.keyid: old.public_key})
    assert rot.from_seq == 11 > max(queued) and "from seq 11" in said[0]
    reg = tmp_path / "registry.json"
    save_registry(reg, [enrolment(old, DEVICE, SITE)])
    central.rotate((etc / ROTATION_FILE).read_bytes(), reg, said.append)
    records = registry.load_or_empty(reg)
    assert [(r.keyid, r.status, r.until_seq) for r in records if r.keyid == old.keyid] == [(old.keyid, "rotated", 11)]
    # -- the agent starts again: its queued old-key rows are accepted, its next seq is the rotation's
    new = SigningKey.load(etc / KEY_FILE)
    assert new.keyid == rot.new.keyid != old.keyid
    outbox = Outbox(state / "outbox.db")
    try:
        rows = outbox.peek(100)
        assert [r.seq for r in rows] == queued
        assert outbox.append(lambda s: event(new, s)) == rot.from_seq
        rows = outbox.peek(100)
    finally:
        outbox.close()
    ingest = Verifier(records)
    assert [ingest.check(r.envelope)[0]["seq"] for r in rows] == [*queued, 11]
    with pytest.raises(SignatureError) as refused:  # the old key past the rotation is still refused
        ingest.verify(event(old, 12)[1])
    assert refused.value.reason == "revoked"


def test_no_outbox_yet_starts_at_one(tmp_path: Path) -> None:
    assert next_seq(tmp_path) == 1
    assert not (tmp_path / "outbox.db").exists()  # asking does not create one


def enrolled_device(tmp_path: Path) -> tuple[Path, SigningKey, DevicePaths]:
    """A device's key folder (key and record) and an empty state folder: (etc, key, paths)."""
    etc, state = tmp_path / "etc", tmp_path / "state"
    etc.mkdir()
    state.mkdir()
    key = SigningKey.generate()
    key.save(etc / KEY_FILE)
    (etc / PUB_FILE).write_text(json.dumps(enrolment(key, DEVICE, SITE).to_json()))
    return etc, key, DevicePaths(etc=etc, boot=(), media=(), state=state)


def test_two_rotations_before_the_registry_keep_the_chain(tmp_path: Path) -> None:
    # rotate-key run twice before `registry rotate`: the first record must not be overwritten, or
    # the second (signed by the key the first introduced) could never be applied
    etc, first, paths = enrolled_device(tmp_path)
    said: list[str] = []
    rotate(paths, said.append)
    rotate(paths, said.append)
    kept = etc / "rotation.1.dsse"
    assert kept.is_file() and f"give {kept} {etc / ROTATION_FILE} to" in said[1]
    reg = tmp_path / "registry.json"
    save_registry(reg, [enrolment(first, DEVICE, SITE)])
    from tests.helpers import cli

    done = cli("registry", "rotate", str(kept), str(etc / ROTATION_FILE), "--registry", str(reg))
    assert done.returncode == 0, done.stderr
    active = [r for r in registry.load_or_empty(reg) if r.status == "active"]
    assert [r.keyid for r in active] == [SigningKey.load(etc / KEY_FILE).keyid]
    # a third rotation keeps both earlier records, numbered in order, and the command it prints
    # works although the registry already has the first two: they are passed over, said so
    rotate(paths, said.append)
    chain = [kept, etc / "rotation.2.dsse", etc / ROTATION_FILE]
    assert chain[1].is_file() and f"give {' '.join(map(str, chain))} to" in said[2]
    again = cli("registry", "rotate", *map(str, chain), "--registry", str(reg))
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already applied") == 2 and again.stdout.count("rotated pi-1:") == 1
    active = [r for r in registry.load_or_empty(reg) if r.status == "active"]
    assert [r.keyid for r in active] == [SigningKey.load(etc / KEY_FILE).keyid]
    # given alone, an applied record is still refused as replayed
    alone = cli("registry", "rotate", str(kept), "--registry", str(reg))
    assert alone.returncode == 2 and "replayed rotation" in alone.stderr
    # the operator cleans up the applied ones: the next record is numbered above what is left,
    # so the printed chain stays oldest first
    kept.unlink()
    rotate(paths, said.append)
    assert (etc / "rotation.3.dsse").is_file() and f"give {chain[1]} {etc / 'rotation.3.dsse'} {chain[2]}" in said[3]


def test_a_half_made_rotations_record_is_not_kept(tmp_path: Path) -> None:
    # rotate-key stopped after writing its record but before the key swap: that record names a key
    # that was never used, so the next rotation drops it instead of listing it first
    etc, key, paths = enrolled_device(tmp_path)
    rotate(paths, print)
    stale = (etc / ROTATION_FILE).read_bytes()
    (etc / KEY_FILE).unlink()
    key.save(etc / KEY_FILE)  # the old key back in place
    (etc / PUB_FILE).write_text(json.dumps(enrolment(key, DEVICE, SITE).to_json()))
    (etc / ROTATION_FILE).write_bytes(stale)  # as the half-made run left it: record written, key not swapped
    said: list[str] = []
    rotate(paths, said.append)
    assert not list(etc.glob("rotation.*.dsse")) and f"give {etc / ROTATION_FILE} to" in said[0]
    reg = tmp_path / "registry.json"
    save_registry(reg, [enrolment(key, DEVICE, SITE)])
    central.rotate((etc / ROTATION_FILE).read_bytes(), reg, said.append)  # applies: signed by the key in use


def test_a_state_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    key = SigningKey.generate()
    key.save(etc / KEY_FILE)
    (etc / PUB_FILE).write_text(json.dumps(enrolment(key, DEVICE, SITE).to_json()))
    with pytest.raises(UsageError, match="does not exist"):
        rotate(DevicePaths(etc=etc, boot=(), media=(), state=tmp_path / "typo"), print)
    assert not (etc / ROTATION_FILE).exists() and SigningKey.load(etc / KEY_FILE).keyid == key.keyid
