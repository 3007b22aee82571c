"""`edge-agent verify FILE|- --registry FILE`: check envelopes, one result line each."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.errors import SignatureError, UsageError
from agent.protocol.enrolment import load_registry
from agent.protocol.dsse import MANIFEST_PAYLOAD_TYPE
from agent.central.verify import Excerpt, Verifier, payload_type_of, ranges_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="verify signed envelopes (one per line) against a registry")
    p.add_argument("file", help="file of envelopes, one per line, or - for standard input")
    p.add_argument("--registry", required=True, metavar="FILE", help="enrolment records (or one device.pub.json)")
    p.add_argument("--quiet", action="store_true", help="print only problems and the summary")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    verifier = Verifier(load_registry(Path(args.registry)))
    excerpt = Excerpt()
    if args.file == "-":
        lines = sys.stdin.buffer.read().splitlines()
    else:
        try:
            lines = Path(args.file).read_bytes().splitlines()
        except FileNotFoundError:
            raise UsageError(f"envelope file {args.file!r} not found") from None
        except (IsADirectoryError, PermissionError) as exc:
            raise UsageError(f"cannot read envelope file {args.file!r}: {exc.__class__.__name__}") from None
    bad = dupes = good = 0
    manifests: set[str] = set()
    cited: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            if payload_type_of(line) == MANIFEST_PAYLOAD_TYPE:
                doc, sha = verifier.verify_manifest(line)
                manifests.add(sha)
                good += 1
                print(f"line {n}: MANIFEST {doc['device']} sha256 {sha}")
                continue
            event = verifier.verify(line)
        except SignatureError as exc:
            bad += 1
            print(f"line {n}: BAD {exc}")
            continue
        state = excerpt.add(event)
        if state == "conflict":
            bad += 1
            print(f"line {n}: BAD seq-conflict: {event['device']} seq {event['seq']} seen before with another body")
            continue
        if state == "duplicate":
            dupes += 1
            print(f"line {n}: DUPLICATE {event['device']} seq {event['seq']}")
            continue
        good += 1
        cited[event["manifest"]] = cited.get(event["manifest"], 0) + 1
        if not args.quiet:
            print(f"line {n}: OK {json.dumps(event, sort_keys=True)}")
    gaps = excerpt.gaps()
    for device, ranges in gaps.items():
        print(f"{device}: seq gaps {ranges_text(ranges)}")
    uncited = 0  # events whose own signature is good but whose manifest is not among those given
    if manifests:  # with manifests in the input, every event must cite one of them
        for sha, count in sorted(cited.items()):
            if sha not in manifests:
                uncited += count
                print(f"manifest {sha}: BAD cited by {count} event(s) but not among the verified manifests")
    tail = f", {uncited} citing a manifest not verified here" if uncited else ""
    print(f"verified: {good} ok, {bad} bad, {dupes} duplicates, {sum(len(r) for r in gaps.values())} gaps{tail}")
    if not (good or bad or dupes):  # nothing verified is not a success
        raise UsageError(f"{'standard input' if args.file == '-' else repr(args.file)} holds no envelope; "
                         f"give the --events-out file (one envelope per line) or a subscriber's output")
    return 1 if bad or uncited else 0
