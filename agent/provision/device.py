"""The device's side: first boot from a site bundle, later bundles and approvals from a stick, key rotation.

Every path is injectable (DevicePaths) so tests run in temporary roots. The device key and the
MQTT TLS key are made here, exclusively, mode 0600, and never leave this folder: what goes out (the
enrolment request, a rotation) holds public keys only.
"""

from __future__ import annotations

import base64
import glob
import json
import logging
import os
import pwd
import shutil
import subprocess
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent import __version__
from agent.config import check_id, merge, parse, read_toml
from agent.delivery.outbox import Outbox
from agent.errors import SignatureError, StateError, UsageError
from agent.protocol import topics
from agent.protocol.dsse import SigningKey, key_id, open_envelope
from agent.protocol.enrolment import KEY_FILE, PUB_FILE, enrolment
from agent.protocol.provisioning import (
    Approval,
    Bundle,
    Request,
    Rotation,
    fingerprint,
    open_approval,
    open_bundle,
    public_key_of,
    sign_request,
)
from agent.provision.files import (
    APPROVALS,
    BUNDLE_FILE,
    FOLDER,
    REQUESTS,
    toml_text,
    write_private,
    write_public,
    write_secret,
)

log = logging.getLogger(__name__)

TLS_KEY_FILE = "mqtt.key"
TLS_CERT_FILE = "mqtt.crt"
CA_FILE = "ca.crt"
INGEST_KEYS_FILE = "ingest.pub.json"
TRUST_FILE = "provisioning.pub.json"
REQUEST_FILE = "request.dsse"
ROTATION_FILE = "rotation.dsse"
CONFIG_FILE = "agent.toml"
NM_FILE = "edge-agent-wifi.nmconnection"
# PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410) and the SubjectPublicKeyInfo prefix of a public key
PKCS8_ED25519 = bytes.fromhex("302e020100300506032b657004220420")
SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")

Say = Callable[[str], None]


@dataclass(frozen=True)
class DevicePaths:
    etc: Path = Path("/etc/edge-agent")
    boot: tuple[Path, ...] = (Path("/boot/firmware"), Path("/boot"))
    media: tuple[str, ...] = ("/media/*/*", "/media/*", "/run/media/*/*", "/mnt/*", "/mnt")
    bundle: Path | None = None  # an explicit bundle file
    stick: Path | None = None  # an explicit stick (its root, holding edge-agent/)
    device_tree: Path = field(default_factory=lambda: Path(os.environ.get("EDGE_AGENT_DEVICE_TREE",
                                                                          "/proc/device-tree")))
    nm_dir: Path = Path("/etc/NetworkManager/system-connections")
    trust: Path | None = None  # provisioning key record(s); default etc/provisioning.pub.json
    state: Path | None = None  # the agent's state folder (outbox.db), for a rotation's seq
    owner: str = ""  # the service's user: owns mqtt.key so `run` can read it

    @property
    def trust_file(self) -> Path:
        return self.trust or self.etc / TRUST_FILE

    def sticks(self) -> list[Path]:
        """Mounted sticks carrying an edge-agent/ folder (the explicit one alone when given)."""
        if self.stick is not None:
            return [self.stick]
        found: list[Path] = []
        for pattern in self.media:
            for p in sorted(glob.glob(pattern)):
                if (Path(p) / FOLDER).is_dir() and Path(p) not in found:
                    found.append(Path(p))
        return found


def trusted(paths: DevicePaths) -> dict[str, bytes]:
    try:
        data = json.loads(paths.trust_file.read_text())
    except FileNotFoundError:
        raise UsageError(f"no provisioning key at {str(paths.trust_file)!r} to check a bundle against; "
                         "the image must carry the operator's provisioning.pub.json") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {str(paths.trust_file)!r}: {exc}") from None
    out = {}
    for i, rec in enumerate(data if isinstance(data, list) else [data]):
        try:
            kid, raw = public_key_of(rec, f"{paths.trust_file} record {i + 1}")
        except SignatureError as exc:
            raise UsageError(str(exc).split(": ", 1)[-1]) from None
        out[kid] = raw
    return out


def find_bundle(paths: DevicePaths) -> Path:
    """The bundle to use: an explicit file, else a stick's, else the boot partition's."""
    if paths.bundle is not None:
        if not paths.bundle.is_file():
            raise UsageError(f"bundle {str(paths.bundle)!r} not found")
        return paths.bundle
    candidates = [s / FOLDER / BUNDLE_FILE for s in paths.sticks()] + [b / FOLDER / BUNDLE_FILE for b in paths.boot]
    for c in candidates:
        if c.is_file():
            return c
    raise UsageError("no site bundle found (looked for edge-agent/bundle.dsse on "
                     + ", ".join(str(c.parent.parent) for c in candidates[:4]) + "); write one with "
                     "`edge-agent provision write`")


def read_bundle(path: Path, paths: DevicePaths) -> Bundle:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read bundle {str(path)!r}: {exc.strerror or exc}") from None
    try:
        return open_bundle(data, trusted(paths))
    except SignatureError as exc:
        raise SignatureError(exc.reason, f"refused bundle {str(path)!r}: {str(exc).split(': ', 1)[-1]}") from None


def device_tree_text(paths: DevicePaths, name: str) -> str:
    try:
        return (paths.device_tree / name).read_bytes().rstrip(b"\0").decode("ascii", "replace").strip()
    except OSError:
        return ""


def device_identity(paths: DevicePaths, given: str | None) -> tuple[str, str]:
    """(device id, serial): the given id, else pi-<serial> from the device tree."""
    serial = device_tree_text(paths, "serial-number").lower()
    device_id = given or (f"pi-{serial}" if serial else "")
    if not device_id:
        raise UsageError(f"no serial number in {paths.device_tree}/serial-number; give --device-id")
    try:
        check_id(device_id, "device id")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return device_id, serial


def new_tls_key() -> tuple[bytes, bytes]:
    """A fresh Ed25519 key for the MQTT client certificate: (PKCS#8 PEM, raw public key). OpenSSL
    reads the PEM; no `cryptography` is needed on the device."""
    import nacl.signing

    key = nacl.signing.SigningKey.generate()
    der = PKCS8_ED25519 + bytes(key)
    b64 = base64.encodebytes(der).decode().replace("\n", "")
    pem = f"-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n".encode()
    return pem, bytes(key.verify_key)


def tls_public_key(paths: DevicePaths) -> bytes:
    """The public half of the device's TLS key file."""
    pem = (paths.etc / TLS_KEY_FILE).read_text()
    der = base64.b64decode("".join(line for line in pem.splitlines() if not line.startswith("-----")))
    if not der.startswith(PKCS8_ED25519) or len(der) != len(PKCS8_ED25519) + 32:
        raise StateError(f"{paths.etc / TLS_KEY_FILE} is not an edge-agent Ed25519 TLS key")
    return SigningKey.from_seed(der[len(PKCS8_ED25519):]).public_key


def broker_parts(url: str) -> tuple[str, int]:
    rest = url.partition("://")[2]
    host, _, port = rest.rpartition(":")
    return host.strip("[]"), int(port)


def config_table(paths: DevicePaths, bundle: Bundle, device_id: str) -> dict[str, Any]:
    """agent.toml: the existing file under the bundle's settings under what provisioning decides."""
    path = paths.etc / CONFIG_FILE
    existing = read_toml(path) if path.exists() else {}
    host, port = broker_parts(bundle.broker)
    mqtt: dict[str, Any] = {"host": host, "port": port, "tls": True, "ca_file": str(paths.etc / CA_FILE),
                            "topic_prefix": bundle.topic_prefix}
    if (paths.etc / TLS_CERT_FILE).exists():
        mqtt |= {"cert_file": str(paths.etc / TLS_CERT_FILE), "key_file": str(paths.etc / TLS_KEY_FILE)}
    own = {"device": {"id": device_id, "site": bundle.site}, "mqtt": mqtt,
           "outbox": {"ack": "ingest", "ingest_keys": str(paths.etc / INGEST_KEYS_FILE)}}
    table = merge(merge(existing, bundle.settings), own)
    mqtt_table = table["mqtt"]
    if "cert_file" not in mqtt:  # a previous file's certificate paths go with the certificate
        for k in ("cert_file", "key_file"):
            mqtt_table.pop(k, None)
    return table


def write_site_files(paths: DevicePaths, bundle: Bundle, envelope: bytes, device_id: str) -> list[str]:
    """The bundle's public files and the config; returns what changed."""
    changed = []
    files = {
        CA_FILE: bundle.ca_pem.encode(),
        INGEST_KEYS_FILE: (json.dumps(list(bundle.ingest_keys), indent=2) + "\n").encode(),
    }
    for name, data in files.items():
        if write_public(paths.etc / name, data):
            changed.append(name)
    # the bundle holds the Wi-Fi key and the enrolment password: root only (only the root commands
    # firstboot, stick and rotate-key read it; the service never does)
    if write_secret(paths.etc / BUNDLE_FILE, envelope):
        changed.append(BUNDLE_FILE)
    text = toml_text(config_table(paths, bundle, device_id),
                     f"written by edge-agent from site bundle {bundle.id}; a newer bundle rewrites it")
    parse(tomllib.loads(text))  # never leave a config `run` would refuse
    if write_public(paths.etc / CONFIG_FILE, text.encode(), 0o640):
        changed.append(CONFIG_FILE)
    if paths.owner:  # root:<service group> 0640, as hw/install.sh leaves it: the service reads it
        os.chown(paths.etc / CONFIG_FILE, 0, pwd.getpwnam(paths.owner).pw_gid)
    if bundle.wifi and write_nm_connection(paths, bundle.wifi):
        changed.append(NM_FILE)
    return changed


def write_nm_connection(paths: DevicePaths, wifi: dict[str, str]) -> bool:
    """The bundle's Wi-Fi as a NetworkManager keyfile (0600, as NetworkManager requires)."""
    lines = ["[connection]", "id=edge-agent-wifi", "type=wifi", "autoconnect=true", "",
             "[wifi]", "mode=infrastructure", f"ssid={wifi['ssid']}", ""]
    if wifi.get("psk"):
        lines += ["[wifi-security]", "key-mgmt=wpa-psk", f"psk={wifi['psk']}", ""]
    lines += ["[ipv4]", "method=auto", "", "[ipv6]", "method=auto", ""]
    changed = write_secret(paths.nm_dir / NM_FILE, "\n".join(lines).encode())
    if changed and paths.nm_dir == DevicePaths.nm_dir and shutil.which("nmcli"):
        # NetworkManager reads new keyfiles on reload; best effort (the next boot reads it anyway)
        subprocess.run(["nmcli", "connection", "reload"], check=False, capture_output=True, timeout=30)
    return changed


def firstboot(paths: DevicePaths, say: Say, device_id: str | None = None, publish: bool = True,
              timeout_s: float = 10.0) -> int:
    """Verify the bundle, make the keys, write the config, leave and send the enrolment request."""
    key_path = paths.etc / KEY_FILE
    if key_path.exists():
        say(f"device key {key_path} exists: this device is provisioned, nothing to do")
        return 0
    source = find_bundle(paths)
    bundle = read_bundle(source, paths)
    say(f"bundle {bundle.id} for site {bundle.site} from {source}: signature good")
    device_id, serial = device_identity(paths, device_id)
    board = device_tree_text(paths, "model") or "unknown"
    # The device key is saved last, exclusively: it is what marks this device provisioned (the
    # unit's condition). A first boot cut short before it runs again in full on the next boot.
    key = SigningKey.generate()
    record = enrolment(key, device_id, bundle.site)
    tls_pem, tls_public = new_tls_key()
    tls_path = paths.etc / TLS_KEY_FILE
    if tls_path.exists():  # left by a first boot cut short: never certified, never used
        tls_path.unlink()
    write_private(tls_path, tls_pem, paths.owner)
    changed = write_site_files(paths, bundle, source.read_bytes(), device_id)
    write_public(paths.etc / PUB_FILE, (json.dumps(record.to_json(), indent=2) + "\n").encode())
    request = Request(record, serial, board, __version__, bundle.id, tls_public, int(time.time()))
    envelope = sign_request(request, key)
    write_public(paths.etc / REQUEST_FILE, envelope)
    key.save(key_path)  # exclusive, 0600: a second first boot racing this one fails here
    say(f"device {device_id} (serial {serial or '-'}, {board}): key {fingerprint(key.keyid)} created in {paths.etc}")
    say(f"wrote {', '.join(changed)}")
    for stick in paths.sticks():
        out = stick / FOLDER / REQUESTS / f"{device_id}.request.dsse"
        try:
            write_public(out, envelope)
            say(f"enrolment request {request.id} written to {out}")
        except StateError as exc:
            say(f"could not write the request to the stick: {exc}")
    say(f"fingerprint to read to the operator: {fingerprint(key.keyid)}")
    if publish and bundle.enrol_broker:
        publish_request(bundle, paths, device_id, envelope, say, timeout_s)
    return 0


def _enrol_client(bundle: Bundle, paths: DevicePaths, client_id: str) -> Any:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(bundle.enrol_username, bundle.enrol_password)
    client.tls_set(ca_certs=str(paths.etc / CA_FILE))
    return client


def publish_request(bundle: Bundle, paths: DevicePaths, device_id: str, envelope: bytes, say: Say,
                    timeout_s: float) -> bool:
    """Publish the request retained on the device's enrol topic with the bundle's enrolment account."""
    import threading

    topic = topics.enrol_topic(bundle.topic_prefix, bundle.site, device_id)
    host, port = broker_parts(bundle.enrol_broker)
    done = threading.Event()
    outcome: list[str] = []

    def on_publish(client: Any, userdata: Any, mid: Any, rc: Any, props: Any) -> None:
        outcome.append("ok" if not rc.is_failure else str(rc))
        done.set()

    def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            outcome.append(f"broker refused the enrolment account: {rc}")
            done.set()
            return
        client.publish(topic, envelope, qos=1, retain=True)

    client = _enrol_client(bundle, paths, f"enrol-{device_id}")
    client.on_connect, client.on_publish = on_connect, on_publish
    try:
        client.connect(host, port, keepalive=30)
    except (OSError, ValueError) as exc:
        say(f"enrolment broker {bundle.enrol_broker} not reachable ({exc}); the request waits on the stick")
        return False
    client.loop_start()
    try:
        done.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    if outcome == ["ok"]:
        say(f"enrolment request published on {topic}")
        return True
    say(f"enrolment request not published ({outcome[0] if outcome else 'no answer in time'}); "
        "it waits on the stick")
    return False


# ------------------------------------------------------------------ later: approvals and bundles


def current_bundle(paths: DevicePaths) -> Bundle:
    path = paths.etc / BUNDLE_FILE
    if not path.exists():
        raise UsageError(f"{path} not found: run `edge-agent firstboot` first")
    return read_bundle(path, paths)


def own_record(paths: DevicePaths) -> tuple[SigningKey, str, str]:
    key = SigningKey.load(paths.etc / KEY_FILE)
    data = json.loads((paths.etc / PUB_FILE).read_text())
    return key, str(data["device_id"]), str(data["site"])


def apply_approval(paths: DevicePaths, data: bytes, say: Say) -> Approval:
    """Check an approval (signed by a provisioning key or the site's operator key) and install its
    certificate, after checking it certifies this device's own TLS key."""
    bundle = current_bundle(paths)
    keys = trusted(paths)
    kid, raw = public_key_of(bundle.operator_key, "operator key")
    keys[kid] = raw
    approval = open_approval(data, keys)
    key, device_id, site = own_record(paths)
    if approval.keyid != key.keyid or approval.device_id != device_id or approval.site != site:
        raise SignatureError("key-binding", f"the approval is for {approval.device_id!r} key "
                             f"{fingerprint(approval.keyid)}, not this device "
                             f"({device_id!r} key {fingerprint(key.keyid)})")
    if approval.certificate_pem:
        der = base64.b64decode("".join(line for line in approval.certificate_pem.splitlines()
                                       if not line.startswith("-----")))
        if SPKI_ED25519 + tls_public_key(paths) not in der:
            raise SignatureError("key-binding", "the approval's certificate is not for this device's TLS key")
        write_public(paths.etc / TLS_CERT_FILE, approval.certificate_pem.encode())
        write_site_files(paths, bundle, (paths.etc / BUNDLE_FILE).read_bytes(), device_id)
        say(f"approved: certificate for {device_id} installed in {paths.etc / TLS_CERT_FILE}; "
            "restart edge-agent to connect with it")
    else:
        say(f"approved: {device_id} is enrolled (no certificate issued)")
    return approval


def apply_stick(paths: DevicePaths, say: Say) -> int:
    """What a stick brings to a provisioned device: its approval, and a newer bundle (no new key)."""
    key_path = paths.etc / KEY_FILE
    if not key_path.exists():
        raise UsageError(f"no device key at {key_path}: this device has not had its first boot")
    _, device_id, _ = own_record(paths)
    found = False
    for stick in paths.sticks():
        approval = stick / FOLDER / APPROVALS / f"{device_id}.approval.dsse"
        if approval.is_file():
            apply_approval(paths, approval.read_bytes(), say)
            found = True
        bundle_file = stick / FOLDER / BUNDLE_FILE
        if bundle_file.is_file():
            new = read_bundle(bundle_file, paths)
            old = current_bundle(paths)
            if new.issued <= old.issued:
                say(f"bundle {new.id} on the stick is not newer than the one applied ({old.id}): ignored")
            elif new.site != old.site:
                raise UsageError(f"bundle {new.id} is for site {new.site!r}; this device is in {old.site!r} "
                                 "(moving a device to another site needs a new first boot)")
            else:
                changed = write_site_files(paths, new, bundle_file.read_bytes(), device_id)
                say(f"bundle {new.id} applied (same key {fingerprint(key_id(SigningKey.load(key_path).public_key))}): "
                    f"{', '.join(changed) or 'nothing changed'}")
            found = True
    if not found:
        say("nothing for this device on the stick")
    return 0


def fetch_approval(paths: DevicePaths, say: Say, timeout_s: float = 10.0) -> Approval | None:
    """The retained approval on the device's enrolled topic, fetched with the enrolment account."""
    import queue

    bundle = current_bundle(paths)
    _, device_id, site = own_record(paths)
    if not bundle.enrol_broker:
        raise UsageError("the site bundle names no enrolment broker; bring the approval on a stick")
    topic = topics.enrolled_topic(bundle.topic_prefix, site, device_id)
    got: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    client = _enrol_client(bundle, paths, f"enrolled-{device_id}")
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_message = lambda c, u, msg: got.put(bytes(msg.payload))
    host, port = broker_parts(bundle.enrol_broker)
    try:
        client.connect(host, port, keepalive=30)
    except (OSError, ValueError) as exc:
        raise StateError(f"enrolment broker {bundle.enrol_broker} not reachable ({exc})") from None
    client.loop_start()
    try:
        data = got.get(timeout=timeout_s)
    except queue.Empty:
        say(f"no approval on {topic} yet")
        return None
    finally:
        client.disconnect()
        client.loop_stop()
    return apply_approval(paths, data, say)


# ------------------------------------------------------------------ key rotation


def next_seq(state: Path) -> int:
    """The seq the outbox gives its next event (it keeps counting across a key change): asked of the
    outbox itself, since its counter is not one stored value (see agent.delivery.outbox)."""
    db = state / "outbox.db"
    if not db.exists():
        return 1
    outbox = Outbox(db)
    try:
        return outbox.committed_seq + 1
    finally:
        outbox.close()


def rotate(paths: DevicePaths, say: Say) -> Path:
    """A new device key; the rotation record signed by the old and the new key; the old key gone.
    Stop the agent first: the rotation takes effect at the outbox's next seq."""
    key_path = paths.etc / KEY_FILE
    old, device_id, site = own_record(paths)
    if paths.state is None:
        raise UsageError("give --state, the agent's state folder (its outbox holds the seq counter)")
    if not paths.state.is_dir():
        raise UsageError(f"state folder {str(paths.state)!r} does not exist; give --state the agent's state "
                         f"folder (where outbox.db keeps the seq counter)")
    from_seq = next_seq(paths.state)
    new = SigningKey.generate()
    new_path = key_path.with_name(KEY_FILE + ".new")
    if new_path.exists():
        new_path.unlink()  # a rotation that stopped half-way: its new key was never used
    new.save(new_path)
    record = enrolment(new, device_id, site)
    envelope = Rotation(device_id, site, old.keyid, record, from_seq, int(time.time())).sign(old, new)
    chain = [*keep_earlier(paths.etc / ROTATION_FILE, old.keyid), paths.etc / ROTATION_FILE]
    write_public(paths.etc / ROTATION_FILE, envelope)
    os.replace(new_path, key_path)  # the old key is gone from here on
    write_public(paths.etc / PUB_FILE, (json.dumps(record.to_json(), indent=2) + "\n").encode())
    for stick in paths.sticks():
        keep_earlier(stick / FOLDER / REQUESTS / f"{device_id}.rotation.dsse", old.keyid)
        write_public(stick / FOLDER / REQUESTS / f"{device_id}.rotation.dsse", envelope)
    say(f"rotated {device_id}: key {fingerprint(old.keyid)} -> {fingerprint(new.keyid)} from seq {from_seq}; "
        f"give {' '.join(map(str, chain))} to `edge-agent registry rotate`"
        f"{' (oldest first; one the registry already has is passed over)' if len(chain) > 1 else ''}, "
        f"then start edge-agent")
    return paths.etc / ROTATION_FILE


def introduced_key(record: bytes) -> str:
    """The keyid a rotation record (this device's own file) moves to, "" if it cannot be read."""
    try:
        doc = json.loads(open_envelope(record)[1])
        return str(doc["new"]["keyid"])
    except (SignatureError, ValueError, KeyError, TypeError):
        return ""


def keep_earlier(path: Path, current: str) -> list[Path]:
    """An earlier rotation record at path is kept, renamed NAME.<n>.dsse with n above every number
    already there (never overwritten: the registry may not have it yet, and the next record is
    signed by the key it introduced), but only if it did introduce the key in use now (`current`):
    one from a rotation that stopped before its key was swapped names a key that no longer exists.
    Returns the kept records, oldest first."""
    base = path.name.removesuffix(".dsse")
    kept: dict[int, Path] = {}
    for p in path.parent.glob(f"{base}.*.dsse"):
        middle = p.name[len(base) + 1 : -len(".dsse")]
        if middle.isdigit():
            kept[int(middle)] = p
    if path.exists():
        if introduced_key(path.read_bytes()) == current:
            n = max(kept, default=0) + 1
            kept[n] = path.with_name(f"{base}.{n}.dsse")
            os.replace(path, kept[n])
        else:
            path.unlink()  # a half-made rotation's record: its new key was never used
    return [kept[n] for n in sorted(kept)]

