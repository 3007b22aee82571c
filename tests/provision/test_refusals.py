"""Each way a bundle or a request can be wrong is refused with one line (exit 2), and changes nothing."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from tests.provision.provsite import Device, Site

pytestmark = pytest.mark.slow


@pytest.fixture()
def site(tmp_path: Path) -> Site:
    s = Site(tmp_path)
    s.operator_setup("mqtts://127.0.0.1:8883")
    return s


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_bundle_with_one_changed_byte_is_refused(site: Site) -> None:
    dev = site.device("dev", "10000000cafe0001")
    site.cli("provision", "write", site.op / "bundle.dsse", "--trust", site.op / "provisioning.pub.json",
             "--to", dev.stick)
    path = dev.stick / "edge-agent" / "bundle.dsse"
    env = json.loads(path.read_bytes())
    body = bytearray(base64.b64decode(env["payload"]))
    at = body.index(b"depot-3")
    body[at] = ord("D")  # one byte of the site id
    env["payload"] = base64.b64encode(bytes(body)).decode()
    path.write_text(json.dumps(env))
    before = files(dev.etc)
    line = site.refused("firstboot", *dev.args())
    assert "refused bundle" in line and "changed after it was signed" in line
    assert files(dev.etc) == before and not (dev.etc / "device.key").exists()
    # a byte changed anywhere in the file (not only the payload) is refused as well
    raw = bytearray(site.op.joinpath("bundle.dsse").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    assert "refused bundle" in site.refused("firstboot", *dev.args())
    assert not (dev.etc / "device.key").exists()


def test_a_bundle_signed_by_another_key_is_refused(site: Site) -> None:
    other = site.root / "other"
    site.cli("provision", "keygen", "--out", other)
    site.cli("provision", "bundle", "--key", other / "provisioning.key", "--site", "depot-3",
             "--broker", "mqtts://evil.example:8883", "--ca", site.pki["ca.crt"],
             "--ingest-keys", site.central / "ingest-key" / "device.pub.json", "--out", other / "bundle.dsse")
    dev = site.device("dev", "10000000cafe0002")
    # the operator's own tool refuses to write it for this site's trust ...
    line = site.refused("provision", "write", other / "bundle.dsse", "--trust", site.op / "provisioning.pub.json",
                        "--to", dev.stick)
    assert "signed by a key not trusted here" in line
    # ... and the device refuses it from a stick
    (dev.stick / "edge-agent").mkdir(parents=True)
    (dev.stick / "edge-agent" / "bundle.dsse").write_bytes((other / "bundle.dsse").read_bytes())
    line = site.refused("firstboot", *dev.args())
    assert "refused bundle" in line and "not trusted here" in line
    assert not (dev.etc / "device.key").exists()


def booted(site: Site, name: str, serial: str) -> Device:
    dev = site.device(name, serial)
    site.cli("provision", "write", site.op / "bundle.dsse", "--trust", site.op / "provisioning.pub.json",
             "--to", dev.stick)
    site.cli("firstboot", *dev.args(), "--no-publish")
    return dev


def read_out(dev: Device) -> str:
    """The fingerprint the technician reads out on the device."""
    from agent.protocol.provisioning import fingerprint

    return fingerprint(json.loads((dev.etc / "device.pub.json").read_text())["keyid"])


def test_replayed_forged_and_enrolled_requests_are_refused(site: Site) -> None:
    a = booted(site, "dev-a", "10000000cafe000a")
    reg = ["--registry", site.registry]
    site.cli("registry", "pending", "--from", a.stick, *reg)
    site.cli("registry", "approve", a.id, "--key", site.op / "provisioning.key", "--fingerprint", read_out(a), *reg)
    request = a.stick / "edge-agent" / "requests" / f"{a.id}.request.dsse"
    # replayed: the same request again, after its approval
    run = site.cli("registry", "pending", "--from", request, *reg)
    assert f"refused request of '{a.id}'" in run.stdout and "already enrolled (replayed request)" in run.stdout
    assert "0 pending" in run.stdout
    # forged: a request whose record names A's key but is signed by another key
    from agent.protocol.dsse import SigningKey
    from agent.protocol.provisioning import REQUEST_PAYLOAD_TYPE

    env = json.loads(request.read_bytes())
    body = base64.b64decode(env["payload"])
    forged = site.root / "forged.request.dsse"
    forged.write_bytes(SigningKey.generate().envelope(REQUEST_PAYLOAD_TYPE, body))
    run = site.cli("registry", "pending", "--from", forged, *reg)
    assert "refused enrolment request" in run.stdout and "is not signed by the key it enrols" in run.stdout
    # forged: a changed byte of a genuine request (its serial)
    b = booted(site, "dev-b", "10000000cafe000b")
    breq = b.stick / "edge-agent" / "requests" / f"{b.id}.request.dsse"
    env = json.loads(breq.read_bytes())
    env["payload"] = base64.b64encode(base64.b64decode(env["payload"]).replace(b"cafe000b", b"cafe000c")).decode()
    changed = site.root / "changed.request.dsse"
    changed.write_text(json.dumps(env))
    run = site.cli("registry", "pending", "--from", changed, *reg)
    assert "refused enrolment request" in run.stdout and "forged or changed" in run.stdout
    # each refusal is one line of the listing
    refusals = [line for line in run.stdout.splitlines() if line.startswith("refused")]
    assert len(refusals) == 1
    # a new key asking for an enrolled device id (a reflashed card, or someone else's claim)
    again = site.device("dev-a2", "10000000cafe000a")  # same serial, so the same device id
    site.cli("provision", "write", site.op / "bundle.dsse", "--trust", site.op / "provisioning.pub.json",
             "--to", again.stick)
    site.cli("firstboot", *again.args(), "--no-publish")
    run = site.cli("registry", "pending", "--from", again.stick, *reg)
    assert f"refused request of '{a.id}': that device id already has an active key" in run.stdout
    assert "revoke" in run.stdout
    # approve refuses it too when it was collected before the first was enrolled; after a revoke it passes
    site.cli("registry", "revoke", a.id, *reg)
    site.cli("registry", "pending", "--from", again.stick, *reg)
    site.cli("registry", "approve", a.id, "--key", site.op / "provisioning.key", "--fingerprint", read_out(again),
             *reg)
    listing = site.cli("registry", "list", *reg).stdout
    assert listing.count(a.id) == 2 and "2 records, 1 active" in listing


def test_approve_refuses_an_id_enrolled_meanwhile(site: Site) -> None:
    a = booted(site, "dev-a", "10000000cafe00aa")
    twin = booted(site, "dev-twin", "10000000cafe00aa")
    reg = ["--registry", site.registry]
    site.cli("registry", "pending", "--from", a.stick, "--from", twin.stick, *reg)
    listing = site.cli("registry", "pending", *reg).stdout
    assert "2 pending" in listing and "--fingerprint" in listing
    approve = ["registry", "approve", a.id, "--key", site.op / "provisioning.key", *reg]
    site.cli(*approve, "--fingerprint", read_out(a))
    # the twin's request is now for an enrolled device id
    line = site.refused(*approve, "--fingerprint", read_out(twin))
    assert "already has an active key" in line


def test_approve_needs_the_fingerprint_read_out_on_the_device(site: Site) -> None:
    """Anyone with a copy of the site bundle holds the enrolment account and can leave a request
    under the device's id (retained, it replaces the device's own): only the fingerprint read out on
    the device tells them apart, so approve never enrols without it."""
    real = booted(site, "dev-real", "10000000cafe00bb")
    squatter = booted(site, "dev-squatter", "10000000cafe00bb")  # same id, its own key
    reg = ["--registry", site.registry]
    site.cli("registry", "pending", "--from", squatter.stick, *reg)  # the only request pending for the id
    approve = ["registry", "approve", real.id, "--key", site.op / "provisioning.key", *reg]
    before = files(site.central)
    missing = site.cli(*approve, ok=False)  # argparse's one line, prefixed with the subcommand
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr
    assert "required: --fingerprint" in missing.stderr and "Traceback" not in missing.stderr
    fp = read_out(real)
    for short in (fp[:4], fp[:7], "", "DAF7-XYZ1"):
        line = site.refused(*approve, "--fingerprint", short)
        assert "--fingerprint" in line and ("too short" in line or "not a key fingerprint" in line), line
    for given in (fp, fp[:9], fp.replace("-", "").lower()):
        line = site.refused(*approve, "--fingerprint", given)
        assert f"refused approval of '{real.id}'" in line and "does not match" in line, line
    assert files(site.central) == before  # nothing enrolled, the request still pending
    assert not site.registry.exists()
    # the device's own request, collected: the fingerprint read out picks it among the two
    site.cli("registry", "pending", "--from", real.stick, *reg)
    out = site.cli(*approve, "--fingerprint", fp[:9].lower()).stdout
    assert f"enrolled {real.id}" in out and f"fingerprint {fp}" in out
    listing = site.cli("registry", "list", "--json", *reg).stdout
    assert [r["keyid"] for r in json.loads(listing)] == [
        json.loads((real.etc / "device.pub.json").read_text())["keyid"]]
