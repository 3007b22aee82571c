"""Emit signed synthetic events at a fixed rate through the real Emitter/Outbox/Sender (no camera).

    python -m agent.tools.emitter --config agent.toml --state DIR --rate 40 --count 200

Prints "seq N" per stored event (flushed), so a test can kill it mid-stream and restart it.
Delivery does not need detection: this drives the same delivery path `edge-agent run` does.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from agent.commands import add_config_args, load_config
from agent.config import Config
from agent.emit import Emitter
from agent.errors import AgentError
from agent.health import Health
from agent.outbox import Outbox
from agent.pipeline import load_or_create_key
from agent.privacy import Anonymizer, Identity
from agent.privacy_manifest import manifest_body, manifest_hash
from agent.sign import MANIFEST_PAYLOAD_TYPE
from agent.types import Observation


class Rig:
    """Key, outbox, emitter, health and (with [mqtt]) a started sender, wired like `run`."""

    def __init__(self, cfg: Config) -> None:
        # like `replay`: a key made here is marked throwaway, so `run` never signs with it
        self.key = load_or_create_key(cfg, lambda text: sys.stderr.write(f"emitter: {text}\n"), throwaway=True)
        self.outbox = Outbox(cfg.state_dir / "outbox.db", cfg.outbox.max_rows, cfg.outbox.max_bytes)
        boot = self.outbox.start_boot()
        body = manifest_body({"v": 1, "device": cfg.device.id, "site": cfg.device.site,
                              "raw_video_egress": False, "ack": cfg.outbox.ack})
        self.manifest = self.key.envelope(MANIFEST_PAYLOAD_TYPE, body)
        ident = Identity(cfg.device.id, cfg.device.site, boot, "synthetic", manifest_hash(body))
        prefix = cfg.mqtt.topic_prefix if cfg.mqtt else "edge/v1"
        self.emitter = Emitter(Anonymizer(ident, ("person",)), self.key, self.outbox, prefix)
        self.sender = None
        if cfg.mqtt is not None:
            from agent.sender import Sender

            self.sender = Sender.from_config(cfg, self.outbox, self.manifest)
            self.sender.start()
        self.health = Health(self.outbox, cfg.health, self.sender)

    def tick(self, now_s: float) -> list[int]:
        return self.emitter.emit(self.health.tick(now_s))

    def close(self, flush_s: float) -> None:
        if self.sender is not None:
            self.sender.stop(flush_s)
        self.outbox.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agent.tools.emitter")
    add_config_args(p)
    p.add_argument("--rate", type=float, default=20.0, help="events per second")
    p.add_argument("--count", type=int, default=100, help="events to emit (0: until killed)")
    p.add_argument("--flush-s", type=float, default=20.0, help="wait this long for delivery at the end")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        rig = Rig(load_config(args))
        start = time.monotonic()
        n = 0
        while args.count == 0 or n < args.count:
            due = start + n / args.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            rig.tick(time.monotonic())
            obs = Observation(type="count", rule="door", label="person", t_s=time.monotonic(),
                              values={"entries": n % 7, "exits": n % 5}, direction="in")
            for seq in rig.emitter.emit([obs]):
                print(f"seq {seq}", flush=True)
            n += 1
        rig.close(args.flush_s)
    except AgentError as exc:
        sys.stderr.write(f"edge-agent: error: {exc}\n")
        return exc.exit_code
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
