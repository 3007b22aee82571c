"""`edge-agent privacy-report`: the privacy manifest in force for a config, for reviewers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.commands import add_config_args, load_config
from agent.config import Config
from agent.errors import UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("privacy-report", help="print the privacy manifest: every field that can leave and how precise")
    add_config_args(p)
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the manifest body as JSON (the hashed bytes)")
    fmt.add_argument("--signed", action="store_true", help="print the signed manifest envelope (one line)")
    p.set_defaults(func=cmd_privacy_report)


def model_sha256(cfg: Config) -> str:
    """The installed model's SHA-256 (checked against its pin), else the pinned SHA-256."""
    from agent.detect.factory import checked_model
    from agent.detect.catalogue import model

    spec = model(cfg.detector.model)
    if (cfg.model_dir / spec.file).is_file():
        return checked_model(cfg, cfg.detector.model)[1]
    if not spec.sha256_checked:
        raise UsageError(
            f"model {spec.id!r} is not installed in {cfg.model_dir} and has no checked pin; install it first"
        )
    return spec.sha256


def check_classes(cfg: Config) -> None:
    """detector.classes are all in the model's labels, as the detector checks when it loads: a manifest
    never lists a class nothing can report (a typo such as "persn")."""
    from agent.detect.catalogue import model
    from agent.detect.tflite import read_labels

    if cfg.detector.backend != "tflite":
        return
    spec = model(cfg.detector.model)
    labels = read_labels(Path(cfg.detector.labels).expanduser() if cfg.detector.labels else spec.labels_path)
    unknown = [c for c in cfg.detector.classes if c not in labels]
    if unknown:
        raise UsageError(f"detector.classes: {unknown[0]!r} is not in {spec.id}'s labels (`edge-agent detect "
                         f"--all-classes` on a picture shows their names); fix the config")


def cmd_privacy_report(args: argparse.Namespace) -> int:
    from agent.privacy import manifest as privacy_manifest
    from agent.protocol import topics
    from agent.protocol.dsse import MANIFEST_PAYLOAD_TYPE

    from agent.rules import build_rules

    cfg = load_config(args)
    # the checks `replay` and `run` apply (classes the detector drops, ...): no manifest for what cannot run
    build_rules(cfg)
    check_classes(cfg)
    doc = privacy_manifest.build(cfg, model_sha256(cfg))
    body = privacy_manifest.manifest_body(doc)
    if args.json:
        sys.stdout.write(body.decode("ascii") + "\n")
    elif args.signed:
        from agent.assembly import load_or_create_key

        key = load_or_create_key(cfg, say=lambda _: None)  # the device's own key, never replay's throwaway
        envelope = key.envelope(MANIFEST_PAYLOAD_TYPE, body)
        if len(envelope) > topics.MAX_MANIFEST_BYTES:  # the device would refuse to publish it: so do we
            raise UsageError(f"the signed privacy manifest would be {len(envelope)} bytes, over the "
                             f"{topics.MAX_MANIFEST_BYTES} a device publishes: fewer zones and lines, or "
                             f"polygons with fewer points")
        sys.stdout.write(envelope.decode("ascii") + "\n")
    else:
        for line in privacy_manifest.lines(doc, privacy_manifest.manifest_hash(body)):
            print(line)
    return 0
