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
from agent.assembly import load_or_create_key, publishing
from agent.config import Config
from agent.errors import AgentError
from agent.types import Observation


class Rig:
    """Key, outbox, emitter, health and (with [mqtt]) a started sender, wired like `run`."""

    def __init__(self, cfg: Config) -> None:
        # like `replay`: a key made here is marked throwaway, so `run` never signs with it
        key = load_or_create_key(
            cfg, lambda text: sys.stderr.write(f"emitter: {text}\n"), throwaway=True
        )
        # no model runs here: a small manifest of the same kind stands in for the privacy manifest
        document = {
            "v": 1,
            "device": cfg.device.id,
            "site": cfg.device.site,
            "raw_video_egress": False,
            "ack": cfg.outbox.ack,
        }
        self.pub = publishing(cfg, key, document, "synthetic", check_manifest=False)
        self.outbox, self.emitter, self.sender = self.pub.outbox, self.pub.emitter, self.pub.sender
        self.pub.start()
        self.health = self.pub.heartbeat(cfg)

    def tick(self, now_s: float) -> list[int]:
        return self.emitter.emit(self.health.tick(now_s))

    def close(self, flush_s: float) -> None:
        self.pub.stop(flush_s)
        self.outbox.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agent.tools.emitter")
    add_config_args(p)
    p.add_argument("--rate", type=float, default=20.0, help="events per second")
    p.add_argument("--count", type=int, default=100, help="events to emit (0: until killed)")
    p.add_argument(
        "--flush-s", type=float, default=20.0, help="wait this long for delivery at the end"
    )
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
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
