"""The models for an offline install, beside the wheels on a USB stick (`hw/install.sh download`).

`python -m agent.device.install_media DIR [--models ID,...] [--from FOLDER] [--offline]` puts each
model file in DIR with the licence notice that must travel with it (as `LICENSE` beside the model,
where `models fetch --from DIR` looks for it), SHA-256 checked either way. By default: the models
`hw/install.sh install` fetches for each board profile (its CPU model and Edge TPU twin), so
one stick serves any board. A model with no checked hash is left out with the command that
installs it on the device (named, it is an error), and an AGPL model only when it is named.

Runs on the technician's PC before the agent exists anywhere: standard library only (a test
checks that nothing else is imported).
"""

from __future__ import annotations

import sys
from pathlib import Path

from agent.assets import Pinned, obtain
from agent.detect import catalogue
from agent.device import board
from agent.errors import AgentError, AssetError


FIX = "put it in a folder and name it (hw/install.sh download: --models-from FOLDER; this module: --from FOLDER)"


def install_set(model_id: str) -> tuple[str, ...]:
    """The models `hw/install.sh install` fetches for a configured model: it, then its twin."""
    spec = catalogue.model(model_id)
    return tuple(m for m in (spec.id, spec.cpu_twin or spec.edgetpu) if m)


def profile_models() -> list[str]:
    """Every model the board profiles run (the manifest default where a profile names none)."""
    out: list[str] = []
    for profile in board.profiles().values():
        named = profile.table.get("detector", {}).get("model") or catalogue.default_model()
        for model_id in install_set(str(named)):
            if model_id not in out:
                out.append(model_id)
    return out


def put(dest: Path, ids: list[str], named: bool, local: list[Path], download: bool) -> list[str]:
    """Copy or download the models into dest with their notices; lines to print, in order."""
    lines: list[str] = []
    notices: dict[str, str] = {}  # notice file name -> the hash already put there
    for model_id in ids:
        spec = catalogue.model(model_id)
        if spec.hash_status != "checked":
            if named:
                raise AssetError(f"{spec.id} has no checked SHA-256, so it is not put on a stick; on the "
                                 f"device: edge-agent models fetch {spec.id} --accept-unchecked-hash")
            lines.append(f"{spec.id}: skipped, no checked SHA-256 to hold the file to; on the device: "
                         f"edge-agent models fetch {spec.id} --accept-unchecked-hash")
            continue
        if not spec.bundle_ok and not named:
            continue  # AGPL weights only for someone who names them
        path = obtain(spec.pinned, dest, local, download, fix=FIX)
        line = f"{spec.id}: {path} (sha256 ok)"
        if spec.notice:
            if notices.setdefault(spec.notice, spec.notice_sha256) != spec.notice_sha256:
                raise AssetError(f"{spec.id} needs another {spec.notice} than a model already in {dest}; "
                                 f"put it on a stick of its own (--models {spec.id})")
            item = Pinned(f"{spec.id} licence notice", spec.notice, spec.notice_sha256, spec.notice_urls)
            notice = obtain(item, dest, local, download, fix=FIX)
            line += f" + {notice.name} ({spec.licence})"
        if not spec.bundle_ok:
            line += f"; licence {spec.licence}: never bundled with edge-agent, put here because you named it"
        lines.append(line)
    return lines


def main(argv: list[str] | None = None) -> int:
    from agent.cli import Parser  # the CLI's own: a usage mistake is one line, exit 2 (stdlib only at import)

    p = Parser(prog="python -m agent.device.install_media",
                                description="models and their licence notices for an offline install")
    p.add_argument("dest", metavar="DIR", help="the folder the wheels are in (the stick)")
    p.add_argument("--models", metavar="IDS",
                   help="comma-separated model ids (default: what every board profile installs)")
    p.add_argument("--from", dest="local", action="append", default=[], metavar="FOLDER",
                   help="a folder to copy from first (repeatable), else the pinned URLs")
    p.add_argument("--offline", action="store_true", help="never download")
    args = p.parse_args(argv)
    try:
        ids = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else profile_models()
        dest = Path(args.dest)
        lines = put(dest, ids, bool(args.models), [Path(d) for d in args.local], not args.offline)
    except AgentError as exc:
        sys.stderr.write(f"edge-agent: error: {exc}\n")
        return exc.exit_code
    except OSError as exc:
        sys.stderr.write(f"edge-agent: error: cannot use {exc.filename or args.dest!r}: {exc.strerror}; "
                         f"check the --from folder can be read and {args.dest} written\n")
        return 2
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
