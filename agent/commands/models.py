"""`edge-agent models list|fetch|import|verify` and `edge-agent samples fetch`."""

from __future__ import annotations

import argparse
from pathlib import Path

from agent.detect import catalogue
from agent.assets import expected_hash, install_checked, install_unpinned, obtain, sha256_file
from agent.commands import add_config_args, load_config
from agent.detect.notices import install_notice, model_folders, notice_ok, notice_path
from agent.errors import AssetError, UsageError
from agent.device.hints import fetch_hint
from agent.device.writable import ensure_writable


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="list, fetch, import and verify models")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    q = msub.add_parser("list", help="known models and whether they are installed")
    add_config_args(q)
    q.set_defaults(func=cmd_list)

    q = msub.add_parser("fetch", help="install a model: from --from DIR if there, else download; SHA-256 checked")
    q.add_argument("model_id", metavar="ID")
    q.add_argument("--from", dest="local", action="append", default=[], metavar="DIR",
                   help="local folder to import from first (a USB stick; repeatable)")
    q.add_argument("--offline", action="store_true", help="never download")
    q.add_argument("--accept-unchecked-hash", action="store_true",
                   help="allow a model whose pinned hash was never checked upstream (prints the hash seen)")
    add_config_args(q)
    q.set_defaults(func=cmd_fetch)

    q = msub.add_parser("import", help="install a local model file after checking its SHA-256")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--accept-unchecked-hash", action="store_true",
                   help="accept a model whose hash is not pinned (prints and records the hash seen)")
    add_config_args(q)
    q.set_defaults(func=cmd_import)

    q = msub.add_parser("verify", help="check every installed model's SHA-256")
    add_config_args(q)
    q.set_defaults(func=cmd_verify)

    p = sub.add_parser("samples", help="fetch sample clips for replay")
    ssub = p.add_subparsers(dest="samples_command", metavar="ACTION", required=True)
    q = ssub.add_parser("fetch", help="install a sample clip: from --from DIR if there, else download")
    q.add_argument("sample_id", metavar="ID", nargs="?", default="one-by-one-person-detection")
    q.add_argument("--from", dest="local", action="append", default=[], metavar="DIR",
                   help="local folder to copy from first (a USB stick; repeatable)")
    q.add_argument("--offline", action="store_true", help="never download")
    q.add_argument("--dest", default="samples", metavar="DIR", help="where to put it (default ./samples)")
    q.set_defaults(func=cmd_sample_fetch)


def cmd_list(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    default = catalogue.default_model()
    specs = catalogue.models().values()
    lw = max(len("LICENCE"), *(len(s.licence) for s in specs))  # "BSD-3-Clause AND Apache-2.0" is long
    print(f"{'ID':38s} {'DECODER':16s} {'INPUT':8s} {'LICENCE':{lw}s} {'HASH':9s} {'TWIN':36s} STATE")
    for spec in specs:
        path = cfg.model_dir / spec.file
        installed = path.is_file()
        twin = spec.edgetpu or (f"cpu: {spec.cpu_twin}" if spec.cpu_twin else "-")
        expected = expected_hash(spec.pinned, path) if installed else ""
        if installed and expected and sha256_file(path) != expected:
            notes = [f"DAMAGED (SHA-256 differs; run {fetch_hint(spec.id, cfg)})"]
        else:
            notes = ["installed" if installed else "not installed"]
        if spec.id == default:
            notes.append("default")
        if not spec.bundle_ok:
            notes.append("fetch by name only")
        size = f"{spec.input[0]}x{spec.input[1]}"
        print(f"{spec.id:38s} {spec.decoder:16s} {size:8s} {spec.licence:{lw}s} {spec.hash_status:9s} "
              f"{twin:36s} {', '.join(notes)}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    spec = catalogue.model(args.model_id)
    ensure_writable(cfg.model_dir, "models folder")
    if not spec.bundle_ok:
        print(f"{spec.id}: licence {spec.licence}; never bundled with edge-agent, fetched because you named it")
    local = [Path(d) for d in args.local]
    path = obtain(spec.pinned, cfg.model_dir, local, not args.offline, args.accept_unchecked_hash,
                  fix="put it in a folder and give --from FOLDER, or run `edge-agent models import FILE`")
    _with_notice(spec, path, model_folders(spec, local), not args.offline)
    seen = expected_hash(spec.pinned, path)
    print(f"{spec.id}: {path} (sha256 {seen[:16]}... ok, {spec.hash_status})")
    return 0


def _with_notice(spec: catalogue.ModelSpec, path: Path, beside: list[Path], download: bool) -> None:
    """Install the model's licence notice next to it; without its notice the model is removed again."""
    try:
        notice = install_notice(spec, path.parent, beside, download)
    except AssetError:
        path.unlink(missing_ok=True)
        raise
    if notice is not None:
        print(f"{spec.id}: licence {spec.licence}, notice installed as {notice}")


def cmd_import(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    src = Path(args.file)
    if src.is_dir():
        raise UsageError(f"{args.file!r} is a folder; give the model file in it (a .tflite), "
                         f"or `edge-agent models fetch ID --from {args.file}` to pick the known one by name")
    if not src.is_file():
        raise UsageError(f"model file {args.file!r} not found")
    seen = sha256_file(src)
    matches = [m for m in catalogue.models().values() if m.sha256 == seen]
    if matches:
        ensure_writable(cfg.model_dir, "models folder")
        spec = matches[0]
        dest = install_checked(src, cfg.model_dir / spec.file, spec.sha256, spec.id)
        _with_notice(spec, dest, [src.parent], download=False)
        print(f"{spec.id}: imported {src} -> {dest}")
        return 0
    same_name = [m for m in catalogue.models().values() if m.file == src.name]
    if not same_name:
        with open(src, "rb") as fh:
            tflite = fh.read(8)[4:8] == b"TFL3"
        if tflite:
            raise UsageError(
                f"{src} (SHA-256 {seen}) is a TFLite file that no model in the manifest matches, so it is not "
                f"installed: a model of your own runs with `edge-agent detect --model-file FILE`; a copy of a known "
                f"model is damaged (fetch it again: {fetch_hint(catalogue.default_model(), cfg)}, or another ID "
                f"from `edge-agent models list`)")
        raise UsageError(f"{src} (SHA-256 {seen}) is not a TFLite model, nor one in the manifest; refusing it")
    spec = same_name[0]
    if spec.sha256:
        raise UsageError(f"{src} has SHA-256 {seen}, but {spec.id} must have {spec.sha256}: it is truncated or "
                         f"corrupt; refusing it (fetch it again: {fetch_hint(spec.id, cfg)})")
    if not args.accept_unchecked_hash:
        raise UsageError(
            f"{spec.id} has no pinned SHA-256; {src} has {seen}; "
            f"import it with --accept-unchecked-hash if you trust it (the hash is then recorded)"
        )
    ensure_writable(cfg.model_dir, "models folder")
    install_unpinned(src, cfg.model_dir / spec.file, spec.id)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    bad = checked = 0
    for spec in catalogue.models().values():
        path = cfg.model_dir / spec.file
        if not path.is_file():
            continue
        checked += 1
        expected = expected_hash(spec.pinned, path)
        seen = sha256_file(path)
        if expected and seen == expected and not notice_ok(spec, cfg.model_dir):
            bad += 1  # the licence must travel with the file: a model without it is not installed right
            print(f"{spec.id}: BAD its licence notice {notice_path(spec, cfg.model_dir)} is missing or changed "
                  f"({spec.licence}); "
                  f"install it again: {fetch_hint(spec.id, cfg)}")
        elif expected and seen == expected:
            print(f"{spec.id}: ok" + ("" if spec.sha256 else " (hash recorded on first use, unchecked upstream)"))
        else:
            bad += 1
            print(f"{spec.id}: BAD {path} has SHA-256 {seen}, expected {expected or 'a recorded hash (none)'}; "
                  f"install it again: {fetch_hint(spec.id, cfg)}")
    if not checked:  # nothing checked is not a success
        raise UsageError(f"no model is installed in {cfg.model_dir}; install one: "
                         f"{fetch_hint(catalogue.default_model(), cfg)}")
    return 2 if bad else 0  # a failure, as everywhere else (doctor's FAIL too)


def cmd_sample_fetch(args: argparse.Namespace) -> int:
    item = catalogue.sample(args.sample_id)
    ensure_writable(Path(args.dest), "samples folder", "--dest")
    path = obtain(item, Path(args.dest), [Path(d) for d in args.local], not args.offline)
    print(f"{item.id}: {path} (sha256 ok)")
    return 0


