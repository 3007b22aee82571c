"""The doctor's checks, in the order a person fixes them: identity, model, camera, host, broker, service.

Each check returns Results and never raises for what it finds: a failure is a line with its fix.
The host is read through agent.device.sysinfo.Readers, so tests hand in a fake sysfs tree, clock state,
disk and service. Everything runs offline in a few seconds (camera sampling and the broker probe
are bounded by CAMERA_S and BROKER_S).
"""

from __future__ import annotations

import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.device import sysinfo
from agent.config import Config
from agent.doctor.report import FAIL, PASS, SKIP, WARN, Result
from agent.errors import AgentError

CAMERA_S = 1.5  # longest the camera is sampled for its frame rate
BROKER_S = 2.0  # longest the broker probe waits for each of CONNACK and PUBACK
DISK_FAIL_MB = 64  # below this the outbox cannot take a day of events: failed
DISK_WARN_MB = 512
OUTBOX_WARN_S = 3600  # an oldest row older than this with [mqtt]: events are not leaving
TEMP_WARN_MC = 70_000
TEMP_FAIL_MC = 80_000  # the Pi's firmware starts throttling near 80-85 degrees C
CERT_WARN_S = 30 * 86400


def diagnose(cfg: Config, readers: sysinfo.Readers | None = None, now: Callable[[], float] = time.time) -> list[Result]:
    """Every check for this config, each once, in the order a person would fix them."""
    rd = readers or sysinfo.Readers()
    out: list[Result] = []
    out += check_key(cfg)
    spec_id, accel = check_accelerator(cfg)
    out.append(accel)
    model = check_model(cfg, spec_id)
    out.append(model)
    frame, camera = check_camera(cfg)
    out.append(camera)
    out.append(check_detector(cfg, frame, model.status != FAIL and accel.status != FAIL))
    out.append(check_clock(rd))
    out += check_disk(cfg, rd, now)
    out += check_broker(cfg, now)
    out += check_power(rd)
    out += check_service(rd)
    return out


# ---------------------------------------------------------------- identity


def check_key(cfg: Config) -> list[Result]:
    """Key present, mode 0600, not a replay's throwaway, and its device.pub.json naming this device."""
    from agent.protocol.enrolment import THROWAWAY_MARKER
    from agent.protocol import enrolment
    from agent.protocol.dsse import SigningKey
    from agent.protocol.jsonfile import read_json

    path = Path(cfg.device.key).expanduser() if cfg.device.key else cfg.state_dir / enrolment.KEY_FILE
    if not path.is_file():
        return [Result("key", FAIL, f"no device key at {path}",
                       f"`edge-agent keygen --out {path.parent}`, then enrol {enrolment.PUB_FILE}")]
    if not cfg.device.key and (cfg.state_dir / THROWAWAY_MARKER).exists():
        return [Result("key", FAIL, f"the key in {cfg.state_dir} is a throwaway identity `replay` made",
                       "`edge-agent keygen --out DIR` and set device.key = DIR/device.key")]
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return [Result("key", FAIL, f"{path} has mode {mode:04o}: others can read the device's signing key",
                       f"`chmod 600 {path}`")]
    try:
        key = SigningKey.load(path)
    except AgentError as exc:
        return [Result("key", FAIL, str(exc), "restore the device's key from its backup or re-enrol a new one")]
    out = [Result("key", PASS, f"{path} (mode 0600, keyid {key.keyid[:16]}...)")]
    pub = path.parent / enrolment.PUB_FILE
    if not pub.is_file():
        out.append(Result("enrolment", WARN, f"no {enrolment.PUB_FILE} beside the key: cannot check the enrolment",
                          f"keep the record `edge-agent keygen` wrote next to {path.name}"))
        return out
    try:
        rec = enrolment.Enrolment.from_json(read_json(pub, "enrolment record"), str(pub))
    except AgentError as exc:
        return out + [Result("enrolment", FAIL, str(exc), f"write {pub} again from the key")]
    if rec.keyid != key.keyid:
        out.append(Result("enrolment", FAIL, f"{pub} is for keyid {rec.keyid[:16]}..., not this key's",
                          "enrol the record that belongs to this key"))
    elif (rec.device_id, rec.site) != (cfg.device.id, cfg.device.site):
        out.append(Result(
            "enrolment", FAIL,
            f"the key is enrolled as {rec.device_id}@{rec.site}, the config says {cfg.device.id}@{cfg.device.site}",
            "set device.id and device.site to the enrolled ones (the ingest rejects anything else)"))
    else:
        out.append(Result("enrolment", PASS, f"enrolled as {rec.device_id}@{rec.site}"))
    return out


# ---------------------------------------------------------------- model, accelerator, camera, detector


def check_accelerator(cfg: Config) -> tuple[str | None, Result]:
    """(model id that would run, result): the Edge TPU found and used, the CPU, or a missing accelerator."""
    from agent.detect.delegate import plan

    d = cfg.detector
    try:
        chosen = plan(d)
    except AgentError as exc:
        return None, Result("accelerator", FAIL, str(exc), "plug in the Edge TPU or set detector.delegate = \"cpu\"")
    health: dict[str, Any] = chosen.health
    if health.get("accelerator"):
        return chosen.spec.id, Result("accelerator", PASS, f"Edge TPU present and used ({chosen.spec.id})")
    reason = str(health.get("fallback", ""))
    if d.delegate == "edgetpu":
        return chosen.spec.id, Result("accelerator", WARN, f"Edge TPU configured but unavailable ({reason}); "
                                      f"{chosen.spec.id} runs on the CPU", "plug in the Edge TPU (USB 3 port)")
    if d.delegate == "auto" and reason:
        return chosen.spec.id, Result("accelerator", PASS, f"no Edge TPU ({reason}); {chosen.spec.id} on the CPU")
    return chosen.spec.id, Result("accelerator", PASS, f"CPU ({chosen.spec.id}; detector.delegate = {d.delegate})")


def check_model(cfg: Config, model_id: str | None) -> Result:
    from agent.detect.factory import checked_model

    if model_id is None:
        return Result("model", SKIP, "no model planned (see accelerator)")
    try:
        path, sha = checked_model(cfg, model_id)
    except AgentError as exc:
        return Result("model", FAIL, str(exc).split(";")[0], _model_fix(str(exc), model_id))
    return Result("model", PASS, f"{model_id} at {path} matches its pinned SHA-256 {sha[:16]}...")


def _model_fix(message: str, model_id: str) -> str:
    if "not installed" in message:
        return f"`edge-agent models fetch {model_id}` or `edge-agent models import FILE`"
    if "expected" in message:
        return f"the file is corrupt or replaced: delete it and `edge-agent models fetch {model_id}`"
    return message.partition(";")[2].strip() or f"`edge-agent models fetch {model_id}`"


def check_camera(cfg: Config) -> tuple[Any, Result]:
    """(a frame or None, result): the source opens and yields frames, at least health.min_fps for cameras."""
    from agent.capture import open_source

    src = cfg.source
    if src.kind == "replay" and not src.path:  # the embedded defaults: no config given
        return None, Result("camera", FAIL, "no camera configured (no [source] in the config)",
                            "give --config with the device's config (/etc/edge-agent/agent.toml), whose [source] "
                            "names the camera")
    try:
        source = open_source(src)
    except AgentError as exc:
        return None, Result("camera", FAIL, str(exc).split(";")[0], _camera_fix(cfg, str(exc)))
    live = hasattr(source, "tick")
    frames, first = 0, None
    start = time.monotonic()
    try:
        for frame in source.frames():
            if frame is not None:
                frames += 1
                first = first or frame
            if not live or time.monotonic() - start >= CAMERA_S:
                break
    except AgentError as exc:
        return None, Result("camera", FAIL, str(exc), _camera_fix(cfg, str(exc)))
    finally:
        source.close()
    elapsed = time.monotonic() - start
    if first is None:
        return None, Result("camera", FAIL, f"{src.kind} source opened but gave no frame in {elapsed:.1f} s",
                            _camera_fix(cfg, ""))
    h, w = first.image.shape[:2]
    if not live:
        return first, Result("camera", PASS, f"{src.kind} source opens and yields frames ({w}x{h})")
    fps = frames / max(elapsed, 1e-6)
    text = f"{src.kind} camera yields {w}x{h} at {fps:.1f} frames/s"
    if fps < cfg.health.min_fps:
        return first, Result("camera", WARN, f"{text}, below health.min_fps = {cfg.health.min_fps:g}",
                             "more light, a lower resolution (source.width/height) or a faster link")
    return first, Result("camera", PASS, text)


def _camera_fix(cfg: Config, message: str) -> str:
    tail = message.partition(";")[2].strip()
    if tail:
        return tail
    if cfg.source.kind == "v4l2":
        return "check the cable and `v4l2-ctl --list-devices`; stop anything else using the camera"
    if cfg.source.kind == "rtsp":
        return "check the URL, the credentials and the network"
    if cfg.source.kind == "replay":
        return "set source.path to a readable video file or image folder"
    return "check the camera connector and `rpicam-hello --list-cameras`"


def check_detector(cfg: Config, frame: Any, runnable: bool) -> Result:
    """One frame through the detector: how many objects and how long (a count, never a picture)."""
    if frame is None or not runnable:
        return Result("detector", SKIP, "not run (needs a frame and the model)")
    from agent.detect.factory import build_detector

    try:
        det = build_detector(cfg)
        det.detect(frame)  # the first invoke allocates; time the second
        start = time.perf_counter()
        found = det.detect(frame)
        ms = (time.perf_counter() - start) * 1000
    except AgentError as exc:
        return Result("detector", FAIL, str(exc), "see the model and accelerator lines")
    by = ", ".join(f"{c}: {sum(d.label == c for d in found)}" for c in cfg.detector.classes)
    return Result("detector", PASS, f"one frame through {det.model_id}: {by or 'nothing'} in {ms:.0f} ms")


# ---------------------------------------------------------------- host


def check_clock(rd: sysinfo.Readers) -> Result:
    synced = rd.clock_synced()
    if synced is None:
        return Result("clock", SKIP, "cannot ask the kernel whether the clock is synchronised")
    if not synced:
        return Result("clock", WARN, "system clock not synchronised: events' ts_ms and hourly counts may be off",
                      "`sudo timedatectl set-ntp true` and let the device reach an NTP server")
    return Result("clock", PASS, "system clock synchronised")


def check_state(cfg: Config) -> Result:
    """The state folder (outbox, models, coverage) can be written, or made on the first run."""
    from agent.device.writable import probe_writable, writable_fix

    folder = cfg.state_dir
    if folder.exists() and not folder.is_dir():
        return Result("state", FAIL, f"the state folder {folder} is a file", "give --state (device.state_dir) a folder")
    failed = probe_writable(folder)
    if failed is not None:
        return Result("state", FAIL, f"cannot write to the state folder {folder} ({failed.strerror or failed})",
                      f"{writable_fix(folder, failed.errno)}, or give --state (device.state_dir) another folder")
    if not folder.exists():
        return Result("state", PASS, f"state folder {folder} will be made on the first run")
    return Result("state", PASS, f"state folder {folder} is writable")


def check_disk(cfg: Config, rd: sysinfo.Readers, now: Callable[[], float]) -> list[Result]:
    state = check_state(cfg)
    if state.status == FAIL:  # the disk and outbox lines would describe a folder nothing can use
        return [state]
    usage = rd.disk(cfg.state_dir)
    free = usage.free_mb
    where = str(cfg.state_dir)
    if free < DISK_FAIL_MB:
        disk = Result("disk", FAIL, f"{free} MB free on the disk holding {where}: the outbox cannot store events",
                      "free space (`sudo journalctl --vacuum-size=50M`, old logs) or use a larger card")
    elif free < DISK_WARN_MB:
        disk = Result("disk", WARN, f"only {free} MB free on the disk holding {where}",
                      "free space before the outbox fills it")
    else:
        disk = Result("disk", PASS, f"{free} MB free on the disk holding {where}")
    return [state, disk, check_outbox(cfg, now)]


def check_outbox(cfg: Config, now: Callable[[], float]) -> Result:
    """Depth and age of the outbox, read only (never created or migrated here)."""
    from agent.assembly import OUTBOX_FILE

    path = cfg.state_dir / OUTBOX_FILE
    if not path.is_file():
        return Result("outbox", PASS, f"no outbox yet at {path} (created on the first run)")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            rows, oldest = db.execute("SELECT COUNT(*), MIN(created_ms) FROM outbox").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return Result("outbox", FAIL, f"cannot read {path}: {exc}", "check the state folder's owner and mode")
    age = max(0, int(now() - oldest / 1000)) if oldest else 0
    text = f"{rows} envelope(s) waiting, oldest {age} s"
    if cfg.mqtt is not None and age > OUTBOX_WARN_S:
        return Result("outbox", WARN, f"{text}: events are not leaving", "see the broker line")
    return Result("outbox", PASS, text if cfg.mqtt is not None else f"{text} (no [mqtt]: they stay here)")


def check_power(rd: sysinfo.Readers) -> list[Result]:
    """Under-voltage and throttling from the firmware's bits, and the SoC temperature."""
    out: list[Result] = []
    bits = rd.sys.throttled()
    if bits is None:
        out.append(Result("power", SKIP, "no firmware throttled bits here (not a Raspberry Pi)"))
    else:
        now_names = sysinfo.throttled_names(bits & sysinfo.NOW_MASK)
        past = sysinfo.throttled_names((bits >> sysinfo.SINCE_BOOT_SHIFT) & sysinfo.NOW_MASK)
        fix = _power_fix(bits)
        if now_names:
            out.append(Result("power", FAIL, f"now: {', '.join(now_names)} (throttled=0x{bits:x})", fix))
        elif past:
            out.append(Result("power", WARN, f"since boot: {', '.join(past)} (throttled=0x{bits:x})", fix))
        else:
            out.append(Result("power", PASS, "no under-voltage or throttling since boot (throttled=0x0)"))
    temp = rd.sys.temperature_mc()
    if temp is None:
        out.append(Result("temperature", SKIP, "no SoC thermal zone here"))
    else:
        text = f"SoC at {temp / 1000:.1f} degrees C"
        if temp >= TEMP_FAIL_MC:
            out.append(Result("temperature", FAIL, text, "add a heatsink or fan, shade the enclosure"))
        elif temp >= TEMP_WARN_MC:
            out.append(Result("temperature", WARN, text, "improve cooling before summer"))
        else:
            out.append(Result("temperature", PASS, text))
    return out


def _power_fix(bits: int) -> str:
    voltage = bits & (sysinfo.UNDER_VOLTAGE | sysinfo.UNDER_VOLTAGE << sysinfo.SINCE_BOOT_SHIFT)
    if voltage:
        return "use the official power supply (5.1 V, 3 A for a Pi 4, 5 A for a Pi 5) and a short thick cable"
    return "add a heatsink or fan; the SoC slows down when hot"


def check_service(rd: sysinfo.Readers) -> list[Result]:
    svc = rd.service()
    if svc is None:
        return [Result("service", SKIP, "no systemd here")]
    if svc.active == "not-installed":
        return [Result("service", WARN, "edge-agent.service is not installed",
                       "install hw/edge-agent.service to /etc/systemd/system and `systemctl enable --now edge-agent`")]
    out = []
    if svc.active != "active":
        out.append(Result("service", WARN, f"edge-agent.service is {svc.active}",
                          "`sudo systemctl enable --now edge-agent`; `journalctl -u edge-agent` says why it stopped"))
    else:
        out.append(Result("service", PASS, "edge-agent.service is active"))
    if svc.watchdog_us <= 0:
        out.append(Result("watchdog", WARN, "edge-agent.service has no watchdog: a hung agent is not restarted",
                          "set WatchdogSec= in the unit (with Type=notify)"))
    else:
        out.append(Result("watchdog", PASS, f"systemd watchdog every {svc.watchdog_us / 1e6:g} s"))
    return out


# ---------------------------------------------------------------- broker


def check_broker(cfg: Config, now: Callable[[], float]) -> list[Result]:
    if cfg.mqtt is None:
        return [Result("broker", SKIP, "no [mqtt] section: events stay in the outbox")]
    from agent.delivery.mqtt import NOT_AUTHORIZED, check_files
    from agent.doctor.broker import probe

    m = cfg.mqtt
    try:
        check_files(m)
    except AgentError as exc:
        return [Result("broker", FAIL, str(exc), "fix the path in [mqtt]")]
    keys: list[Result] = []
    if cfg.outbox.ack == "ingest":  # the sender cannot start without the keys its acks are checked with
        from agent.delivery.ingest_keys import load_ingest_keys

        try:
            load_ingest_keys(cfg.outbox.ingest_keys)
        except AgentError as exc:
            keys.append(Result("ingest keys", FAIL, str(exc), "point outbox.ingest_keys at the ingest's public "
                               "key record (ingest.pub.json, from the site's operator)"))
    seen = probe(m, cfg.device.id, cfg.device.site, BROKER_S)
    if seen.error:
        return [*keys, Result("broker", FAIL, seen.error, _broker_fix(seen.error))]
    out = [*keys, Result("broker", PASS, f"connected to {m.host}:{m.port}{' over TLS' if m.tls else ''} "
                  f"in {seen.elapsed_s * 1000:.0f} ms")]
    if seen.cert_not_after_s is not None:
        left = seen.cert_not_after_s - now()
        days = int(left // 86400)
        if left < CERT_WARN_S:
            out.append(Result("tls", WARN, f"the broker's certificate expires in {days} day(s)",
                              "renew the broker's certificate"))
        else:
            out.append(Result("tls", PASS, f"the broker's certificate is valid for {days} more day(s)"))
    topic = f"{m.topic_prefix}/{cfg.device.site}/{cfg.device.id}/status"
    if seen.puback_code is None:
        out.append(Result("publish", FAIL, f"no PUBACK for a test publish on {topic} in {BROKER_S:g} s",
                          "check the broker's log"))
    elif seen.puback_code == NOT_AUTHORIZED:
        out.append(Result("publish", FAIL, f"the broker refused a test publish on {topic}: not authorized (0x87)",
                          f"grant user {cfg.device.id!r} write on {m.topic_prefix}/{cfg.device.site}/"
                          f"{cfg.device.id}/# in the broker's ACL"))
    elif seen.puback_code >= 0x80:
        out.append(Result("publish", FAIL, f"the broker refused a test publish on {topic}: 0x{seen.puback_code:02x}",
                          "check the broker's log"))
    else:
        out.append(Result("publish", PASS, f"test publish on {topic} acknowledged"))
    return out


def _broker_fix(error: str) -> str:
    if "refused the connection" in error:
        return "check the device's MQTT username/password or client certificate with the broker's admin"
    if "TLS" in error:
        return "check mqtt.ca_file (the CA that signed the broker) and the device's clock"
    return "check mqtt.host and mqtt.port, that the broker runs, and the network/firewall"
