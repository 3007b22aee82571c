"""Build the device from its config: the frame pipeline and the publishing half, wired once here.

The publishing half is the outbox, the emitter (anonymizer, signer, egress guard), the signed privacy
manifest, the sender (with [mqtt]) and the heartbeat. `run`, `replay`, the emitter tool, the
benchmarks and the tests take it from here instead of wiring it by hand.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Mapping, Sequence

from agent.config import Config
from agent.delivery.emitter import Emitter
from agent.delivery.heartbeat import Health
from agent.delivery.outbox import Outbox
from agent.delivery.sender import Sender
from agent.device.health import InferenceTimer
from agent.errors import AgentError, ConfigError, EgressViolation, StateError, UsageError
from agent.pipeline import Pipeline
from agent.privacy.anonymizer import Anonymizer, Identity
from agent.privacy.egress import image_signature
from agent.privacy.manifest import manifest_body, manifest_hash
from agent.device.private import private_dir
from agent.protocol import enrolment
from agent.protocol.dsse import MANIFEST_PAYLOAD_TYPE, SigningKey
from agent.protocol.topics import DEFAULT_PREFIX
from agent.device.sysinfo import Readers
from agent.types import Observation

if TYPE_CHECKING:
    from agent.remote.live import LiveDevice
    from agent.device.coverage import Coverage
    from agent.remote.control import RemoteControl

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.db"


def load_or_create_key(cfg: Config, say: Callable[[str], object], throwaway: bool = False) -> SigningKey:
    """The configured key, else the state folder's device.key.

    Only `replay` (throwaway=True) may create a throwaway identity there, and it says so; a device
    that runs for real must have been given its key (`edge-agent keygen`) so its events can be trusted.
    """
    if cfg.device.key:
        return SigningKey.load(Path(cfg.device.key).expanduser())
    path = cfg.state_dir / enrolment.KEY_FILE
    marker = cfg.state_dir / enrolment.THROWAWAY_MARKER
    if not path.exists():
        if not throwaway:
            raise UsageError(
                f"no device key: run `edge-agent keygen --out {cfg.state_dir} --device-id ID --site SITE` "
                "(then enrol device.pub.json), "
                f"or give --key FILE or device.key in the config"
            )
        rec = enrolment.keygen(cfg.state_dir, cfg.device.id, cfg.device.site)
        marker.write_text("created by `edge-agent replay`; never used by `edge-agent run`\n")
        say(f"created a throwaway device identity in {cfg.state_dir} (keyid {rec.keyid[:16]}...)")
    elif marker.exists() and not throwaway:
        raise UsageError(
            f"the key in {cfg.state_dir} is a throwaway identity that `replay` created; give this device "
            f"its own with `edge-agent keygen --out DIR` and --key DIR/device.key (or use another --state)"
        )
    return SigningKey.load(path)


def check_state_dir(path: Path) -> None:
    """The state folder exists (or can be made), is a folder and this user can write it: one line if not."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"state folder {str(path)!r} is a file; give --state a folder")
    from agent.device.writable import ensure_writable

    ensure_writable(path, "state folder")  # read-only or foreign-owned: one line with the fix
    try:
        private_dir(path)  # 0700: the outbox, counters and keys are nobody else's business
    except OSError as exc:
        raise StateError(f"cannot make the state folder {str(path)!r} private: {exc.strerror}") from None


def open_outbox(cfg: Config, path: Path | None = None) -> Outbox:
    """The device's outbox (state_dir/outbox.db unless path is given) with the configured bounds and
    commit window (acked rows are deleted with the window's commits)."""
    return Outbox(path or cfg.state_dir / OUTBOX_FILE, cfg.outbox.max_rows, cfg.outbox.max_bytes,
                  cfg.outbox.commit_interval_s)


@dataclass
class Publishing:
    """The publishing half: what leaves the device, signed, queued and (with [mqtt]) sent."""

    key: SigningKey
    outbox: Outbox
    emitter: Emitter
    manifest_envelope: bytes
    sender: Sender | None

    def heartbeat(self, cfg: Config, counters: Callable[[], Mapping[str, int]] | None = None,
                  beat_at_start: bool = False) -> Health:
        """The heartbeat stage over this outbox and sender (a periodic stage of the pipeline)."""
        return Health(self.outbox, cfg.health, self.sender, counters=counters, beat_at_start=beat_at_start)

    def sign_manifest(self, document: Mapping[str, Any]) -> tuple[bytes, bytes]:
        """(body, envelope) of a privacy manifest, checked by the egress guard (Refused if it may not leave)."""
        body = manifest_body(dict(document))
        envelope = self.key.envelope(MANIFEST_PAYLOAD_TYPE, body)
        self.emitter.guard.check(MANIFEST_PAYLOAD_TYPE, body, envelope)
        return body, envelope

    def use_manifest(self, body: bytes, envelope: bytes) -> None:
        """From now on every event cites this manifest; it is published retained (now, and on connect)."""
        anonymizer = self.emitter.anonymizer
        anonymizer.identity = dataclasses.replace(anonymizer.identity, manifest=manifest_hash(body))
        self.manifest_envelope = envelope
        if self.sender is not None:
            if self.sender.birth is not None:  # the retained birth names the manifest in force
                from agent.protocol.birth import birth_body, check

                doc = check(self.sender.birth)
                self.sender.birth = birth_body(doc["agent_version"], doc["model"], manifest_hash(body),
                                               doc["boot"])
            self.sender.announce(envelope)

    def announce(self) -> None:
        """Publish the birth and the manifest again (the operator's re-announce command)."""
        if self.sender is not None:
            self.sender.announce(self.manifest_envelope)

    def start(self) -> None:
        """Start the sender thread (nothing to start without [mqtt])."""
        if self.sender is not None:
            self.sender.start()

    def stop(self, flush_s: float = 10.0) -> list[Observation]:
        """Commit the outbox's window, stop the sender (flushing up to flush_s) and return the alarms
        it still holds."""
        self.outbox.commit()  # an orderly stop loses nothing: what waits in the window is stored and sent
        if self.sender is None:
            return []
        self.sender.stop(flush_s)
        return self.sender.take_observations()

    def close(self, flush_s: float = 10.0) -> None:
        """Stop the sender, then close the outbox."""
        self.stop(flush_s)
        self.outbox.close()


def publishing(
    cfg: Config,
    key: SigningKey,
    manifest: Mapping[str, Any],
    model_id: str,
    *,
    outbox: Outbox | None = None,
    sink: Callable[[bytes], None] | None = None,
    clock_ms: Callable[[], int] | None = None,
    check_manifest: bool = True,
    on_puback: Callable[[list[int]], None] | None = None,
    on_command: Callable[[bytes, bool], None] | None = None,
    replay: bool = False,
) -> Publishing:
    """Outbox (a new boot), signed manifest, anonymizer and emitter, and a sender when [mqtt] is set
    (not started). manifest is the privacy manifest document the events cite by SHA-256.
    replay: the frames are recorded footage; every event carries the signed `source: replay`."""
    if outbox is None:
        outbox = open_outbox(cfg)
    boot = outbox.start_boot()
    body = manifest_body(dict(manifest))
    manifest_env = key.envelope(MANIFEST_PAYLOAD_TYPE, body)
    ident = Identity(cfg.device.id, cfg.device.site, boot, model_id, manifest_hash(body), replay=replay)
    anonymizer = Anonymizer(ident, cfg.detector.classes, cfg.privacy.min_count_k, cfg.privacy.grid,
                            time_precision_ms=cfg.privacy.time_precision_s * 1000)
    if cfg.homeassistant.enabled and cfg.mqtt is None:
        raise ConfigError("homeassistant.enabled needs an [mqtt] section (discovery is published to the broker)")
    prefix = cfg.mqtt.topic_prefix if cfg.mqtt else DEFAULT_PREFIX
    clock = clock_ms if clock_ms is not None else (lambda: int(time.time() * 1000))
    emitter = Emitter(anonymizer, key, outbox, prefix, clock_ms=clock, sink=sink)
    if check_manifest:
        emitter.guard.check(MANIFEST_PAYLOAD_TYPE, body, manifest_env)  # the manifest leaves too (retained)
    sender = (Sender.from_config(cfg, outbox, manifest_env, on_puback=on_puback, on_command=on_command)
              if cfg.mqtt is not None else None)
    if sender is not None:
        from agent import __version__
        from agent.protocol.birth import birth_body

        sender.birth = birth_body(__version__, model_id, ident.manifest, boot)
        if cfg.homeassistant.enabled:
            from agent.device.homeassistant import Discovery

            ha = Discovery(cfg, model_id, __version__)
            for _, body in ha.configs:
                if image_signature(body):
                    raise EgressViolation("a Home Assistant discovery config carries image data; refused")
            sender.ha = ha
            emitter.sink = _chain(sink, ha.observe)
    return Publishing(key, outbox, emitter, manifest_env, sender)


def _chain(first: Callable[[bytes], None] | None, then: Callable[[bytes], None]) -> Callable[[bytes], None]:
    def both(envelope: bytes) -> None:
        if first is not None:
            first(envelope)
        then(envelope)

    return both


def heartbeat_counters(
    pipeline: Pipeline, clock: Callable[[], float] = time.monotonic, readers: Readers | None = None,
    state_dir: Path | None = None, coverage: Coverage | None = None, timer: InferenceTimer | None = None,
) -> Callable[[], dict[str, int]]:
    """The pipeline's numbers for the heartbeat: frames, processing rate since the last beat,
    camera outages and state, payloads the egress guard refused, whether the Edge TPU runs
    inference, inference p50/p95 since the last beat (with an InferenceTimer), the agent's version
    and, with readers, the host's health (agent.device.health.host_values)."""
    from agent import __version__
    from agent.device.health import camera_state, host_values, version_number

    last = {"frames": 0, "t": clock()}
    version = version_number(__version__)

    def counters() -> dict[str, int]:
        now, frames = clock(), pipeline.frames
        fps = (frames - last["frames"]) / max(1e-6, now - last["t"])
        last["frames"], last["t"] = frames, now
        values = {
            "frames": frames,
            "fps_milli": int(fps * 1000),
            "camera_errors": pipeline.source.camera_errors,
            "camera_state": camera_state(coverage.state if coverage is not None else None),
            "egress_refused": int(pipeline.emitter.egress_refused),
            "accelerator": int(bool(pipeline.detector.health().get("accelerator", 0))),
            "agent_version": version,
        }
        if timer is not None:
            seen = timer.percentiles()
            if seen is not None:
                values["inference_p50_us"], values["inference_p95_us"] = seen
        if readers is not None:
            values.update(host_values(readers, state_dir or Path(".")))
        return values

    return counters


def covered_rules(rules: Sequence[Any], coverage: Coverage, alive: Path | None,
                  durable: Callable[[Callable[[], None]], None] | None = None,
                  from_now: bool = False) -> list[Any]:
    """Counting rules wrapped so their count events carry coverage (observed_s, blind_<reason>_s).
    from_now: rules that take over mid-run (a remote change, the setup view) count from now."""
    from agent.device.coverage import CoveredCounts
    from agent.rules.counting import Counting

    out: list[Any] = []
    for r in rules:
        if isinstance(r, Counting):
            wrapped = CoveredCounts(r, coverage, alive, lambda: int(time.time() * 1000), durable=durable)
            out.append(wrapped.start_now() if from_now else wrapped)
        else:
            out.append(r)
    return out


@dataclass
class Assembly:
    pipeline: Pipeline
    publishing: Publishing
    events_out: IO[bytes] | None = None
    remote: RemoteControl | None = None  # with [remote] operator_keys: signed changes on the cmd topic
    coverage: Any = None  # agent.device.coverage.Coverage: the pipeline's frame stage
    alive: Path | None = None  # the alive mark counting rules touch (`run` only)
    live: LiveDevice | None = None  # the running pipeline and publishing half, as changes switch them

    @property
    def outbox(self) -> Outbox:
        return self.publishing.outbox

    @property
    def key(self) -> SigningKey:
        return self.publishing.key

    @property
    def manifest_envelope(self) -> bytes:
        return self.publishing.manifest_envelope


def assemble(
    cfg: Config, say: Callable[[str], None], events_out: Path | None = None, throwaway_key: bool = False,
    heartbeat: bool = False, replay: bool = False,
) -> Assembly:
    """Build every stage from the config (errors surface here, before the first frame).

    heartbeat: add the heartbeat stage (on the pipeline's clock: media time in a replay, so replays
    are repeatable). The sender, with [mqtt], is built but not started: asm.publishing.start().
    replay: recorded footage (`edge-agent replay`): its events are marked `source: replay`."""
    from agent.capture import open_source
    from agent.device.coverage import ALIVE_FILE, Coverage, downtime_s
    from agent.detect.factory import build_detector
    from agent.privacy import manifest as privacy_manifest
    from agent.rules import build_rules
    from agent.track import ByteTracker

    check_state_dir(cfg.state_dir)
    remote = None
    if cfg.remote.operator_keys:
        from agent.remote.setup import remote_control

        remote, cfg = remote_control(cfg)  # the stored remote settings laid over the config file
    rules = build_rules(cfg)
    sink: Callable[[bytes], None] | None = None
    fh: IO[bytes] | None = None
    if events_out is not None:
        if not events_out.parent.is_dir():  # never create folders on the user's behalf (as root, anywhere)
            raise UsageError(f"cannot write --events-out {str(events_out)!r}: the folder "
                             f"{str(events_out.parent)!r} does not exist; create it first or choose another")
        try:
            # unbuffered: each envelope reaches the OS as it is written, so a killed run's file holds
            # every line its outbox holds (truncated below, once every other check has passed)
            fh = open(events_out, "ab", buffering=0)
        except OSError as exc:
            raise UsageError(f"cannot write --events-out {str(events_out)!r}: {exc.strerror}") from None

        def write_line(envelope: bytes) -> None:
            assert fh is not None
            fh.write(envelope + b"\n")

        sink = write_line

    source = open_source(cfg.source)
    if not throwaway_key:
        key = load_or_create_key(cfg, say)  # refuse a run without its key before loading the model
    # checks the model file's SHA-256 and picks CPU or Edge TPU; timed for the heartbeat's p50/p95
    detector = InferenceTimer(build_detector(cfg))
    if throwaway_key:
        key = load_or_create_key(cfg, say, throwaway=True)
    from agent.device.identity import bind, key_path

    cfg = bind(cfg, key, key_path(cfg))  # never sign as a device the key is not enrolled as
    # what actually runs: after an Edge TPU fall-back that is the CPU twin, not the configured id
    model_id, model_sha = detector.model_id, detector.model_sha256
    outbox = open_outbox(cfg)
    try:
        document = privacy_manifest.build(cfg, model_sha, model_id)
        pub = publishing(cfg, key, document, model_id, outbox=outbox, sink=sink,
                         on_command=remote.offer if remote is not None else None, replay=replay)
        coverage = Coverage(cfg.health.min_fps, cfg.health.dark_level, cfg.health.flat_contrast,
                            dropped=lambda: source.dropped_frames)
        alive: Path | None = None
        if not throwaway_key:  # `run`: the time since the last boot's last interval is blind (not running)
            alive = cfg.state_dir / ALIVE_FILE
            coverage.add_downtime(downtime_s(alive, int(time.time() * 1000)))
        rules = covered_rules(rules, coverage, alive, pub.outbox.when_committed)
        pipeline = Pipeline(source, detector, rules, pub.emitter, ByteTracker(cfg.tracker))
        pipeline.frame_stages.append(coverage)
        pipeline.add_periodic(source)  # a live camera's outage is an alarm, not a crash (files: none)
        health = None
        if heartbeat:
            counters = heartbeat_counters(pipeline, readers=Readers(), state_dir=cfg.state_dir, coverage=coverage,
                                          timer=detector)
            health = pub.heartbeat(cfg, counters=counters)
            pipeline.add_periodic(health)
        from agent.remote.live import LiveDevice

        # the running config, and what a remote change or the setup view switches at a frame boundary:
        # rules (with coverage on their counts, counted from the switch), the signed manifest, the
        # detector's privacy masks, the heartbeat's settings
        live = LiveDevice(cfg, pipeline, pub, health, model_id, model_sha,
                          wrap_rules=lambda new: covered_rules(new, coverage, alive, pub.outbox.when_committed,
                                                               from_now=True))
        if remote is not None:
            remote.live = live
            pipeline.add_boundary(remote)  # changes are applied between two frames
        if fh is not None:  # every check has passed: the previous run's lines go now, not before
            fh.truncate(0)
        return Assembly(pipeline, pub, fh, remote, coverage, alive, live)
    except AgentError:  # a mistake said in one line (a missing TLS file, say) is an orderly stop, not a crash
        outbox.close()
        raise
