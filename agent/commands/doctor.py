"""`edge-agent doctor [--json]`: check the device end to end; exit 0 passed, 1 warnings, 2 failures."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from agent.commands import add_config_args, load_config
from agent.errors import AgentError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check config, key, model, camera, clock, disk, broker, power and service")
    add_config_args(p)
    p.add_argument("--json", action="store_true", help="print the results as one JSON document")
    p.add_argument("--sys-root", metavar="DIR", default="/", help=argparse.SUPPRESS)  # a fake sysfs tree (tests)
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from agent.device import sysinfo
    from agent.doctor.checks import diagnose
    from agent.doctor.report import FAIL, PASS, Result, exit_code, summary

    try:
        cfg = load_config(args)
        results = [Result("config", PASS, f"{args.config or 'embedded defaults'} is valid")]
    except AgentError as exc:
        results = [Result("config", FAIL, str(exc), "fix the config file; `edge-agent doctor` again")]
    else:
        results += diagnose(cfg, sysinfo.Readers(sys=sysinfo.SysRoot(Path(args.sys_root))))
    code = exit_code(results)
    if args.json:
        json.dump({"exit": code, "checks": [r.to_json() for r in results]}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in results:
            print(r.line())
        print(summary(results))
    return code
