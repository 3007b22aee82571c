"""The `edge-agent` command: parse arguments, run a command, translate errors into one line."""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import sys
from typing import Any, NoReturn, Sequence

from agent import __version__
from agent.errors import AgentError
from agent.device.private import STATE_COMMANDS, private_umask

# Each module has register(subparsers); its parsers set func(args) -> exit code.
COMMAND_MODULES = (
    "agent.commands.run",
    "agent.commands.keys",
    "agent.commands.verify",
    "agent.commands.privacy",
    "agent.commands.models",
    "agent.commands.detect",
    "agent.commands.outbox",
    "agent.commands.bench",
    "agent.commands.ingest",
    "agent.commands.registry",
    "agent.commands.track",
    "agent.commands.profile",
    "agent.commands.doctor",
    "agent.commands.remote",
    "agent.commands.provision",
    "agent.commands.firstboot",
    "agent.commands.setup_view",
)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        # self.prog is the subcommand's ("edge-agent replay"), so the help named is the one that lists its options
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(2)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """As argparse's, but an option the command does not have names that command's help, not the
        top level's (argparse reports leftovers from the top parser)."""
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            where = self._chosen(list(sys.argv[1:] if args is None else args)).prog
            sys.stderr.write(f"{where}: error: unrecognized arguments: {' '.join(extras)} (see `{where} --help`)\n")
            raise SystemExit(2)
        return ns

    def _chosen(self, words: list[str]) -> argparse.ArgumentParser:
        """The deepest (sub)command the words name: `models fetch`, `bench detect`, or the top level."""
        parser: argparse.ArgumentParser = self
        while True:
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            step = next(((i, w) for i, w in enumerate(words) if subs and w in subs[0].choices), None)
            if step is None:
                return parser
            parser, words = subs[0].choices[step[1]], words[step[0] + 1 :]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="edge-agent",
        description="Privacy-first video analytics: camera frames in, anonymized signed metadata events out.",
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more (never payloads or frames)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def quiet_native_logs() -> None:
    """OpenCV's and FFmpeg's own warnings (a damaged video, an unreachable camera) would print before
    the one line we promise: silence them unless the user set these variables."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET


def main(argv: Sequence[str] | None = None) -> int:
    quiet_native_logs()  # before anything imports cv2
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    guard = private_umask() if args.command in STATE_COMMANDS else contextlib.nullcontext()
    try:
        with guard:  # state files 0600 and folders 0700 whatever the caller's umask
            return int(args.func(args) or 0)
    except AgentError as exc:
        sys.stderr.write(f"edge-agent: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("edge-agent: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # the last net for a file or folder this user may not touch (read-only, foreign-owned)
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        where = f" {exc.filename!r}" if exc.filename else ""
        sys.stderr.write(f"edge-agent: error: cannot use{where}: {exc.strerror}; make it accessible to this "
                         f"user (or run as its owner), or choose another folder\n")
        return 2
