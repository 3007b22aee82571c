"""`edge-agent config sign|push|status`: the operator's side of signed remote configuration."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import BrokerError, UsageError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "config", help="signed remote configuration: sign a change, push it, see what devices run"
    )
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)

    s = csub.add_parser(
        "sign", help="sign a configuration change (settings and/or commands) with an operator key"
    )
    s.add_argument(
        "--key", required=True, metavar="FILE", help="operator private key (`edge-agent keygen`)"
    )
    s.add_argument("--site", required=True, help="site of the target")
    s.add_argument("--device", default="", help="target device (omit: every device of the site)")
    s.add_argument(
        "--version",
        required=True,
        type=int,
        help="this change's version (above what the device runs)",
    )
    s.add_argument(
        "--base-version",
        type=int,
        default=None,
        help="the version the device runs now, that this change builds on (default: version - 1)",
    )
    s.add_argument(
        "--settings",
        metavar="FILE.toml",
        help="settings as in a config file: [[zones]], [[lines]], [health] heartbeat_s, "
        "[log] level",
    )
    s.add_argument(
        "--command",
        dest="commands",
        action="append",
        default=[],
        choices=("heartbeat", "announce", "restart"),
        help="also run this command once accepted (repeatable)",
    )
    s.add_argument(
        "--expires-in", type=int, default=3600, metavar="SECONDS", help="valid for this long (3600)"
    )
    s.add_argument(
        "--out", metavar="FILE", help="write the envelope here (default: standard output)"
    )
    s.set_defaults(func=cmd_sign)

    q = csub.add_parser("push", help="publish a signed change on the target's cmd topic (retained)")
    q.add_argument("envelope", help="the file `config sign` wrote")
    q.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="TOML config whose [mqtt] (or else [ingest]) says how to reach the broker",
    )
    q.add_argument("--username", default="operator", help="MQTT user name (default operator)")
    q.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="DEVICE",
        help="device to deliver a site-wide change to (repeatable; a device change goes to "
        "its own topic)",
    )
    q.set_defaults(func=cmd_push)

    t = csub.add_parser(
        "status", help="what each device runs (version, manifest hash) from the ingest's store"
    )
    t.add_argument(
        "--config", metavar="FILE", default=argparse.SUPPRESS, help="TOML config with [ingest]"
    )
    t.add_argument(
        "--database", metavar="URL", default=argparse.SUPPRESS, help="override ingest.database"
    )
    t.add_argument("--json", action="store_true", help="print one JSON object per line")
    t.set_defaults(func=cmd_status)


def cmd_sign(args: argparse.Namespace) -> int:
    from agent.config import read_toml
    from agent.errors import ConfigError
    from agent.protocol import change as ch
    from agent.protocol.dsse import SigningKey

    settings: dict[str, object] = {}
    if args.settings:
        try:
            settings = ch.flatten(read_toml(args.settings))
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
    base = args.version - 1 if args.base_version is None else args.base_version
    if args.expires_in <= 0:
        raise UsageError("--expires-in must be > 0 seconds")
    now = int(time.time())
    change = ch.Change(
        args.site,
        args.device,
        args.version,
        base,
        now,
        now + args.expires_in,
        settings,
        tuple(args.commands),
    )
    key = SigningKey.load(Path(args.key))
    try:
        from agent.remote.settings import parse_settings

        parse_settings(settings)  # what every device refuses, whatever its config (a typo'd key)
        envelope = ch.sign(key, change)
    except ch.ChangeRefused as exc:  # the device would refuse it: say so here
        where = f" ({exc.setting})" if exc.setting else ""
        raise UsageError(f"a device would refuse this change{where}: {exc}") from None
    if args.out:
        try:
            Path(args.out).write_bytes(envelope + b"\n")
        except OSError as exc:
            raise UsageError(f"cannot write --out {args.out!r}: {exc.strerror}") from None
        print(
            f"signed change version {args.version} for {args.site}/{args.device or '*'} "
            f"(keyid {key.keyid[:16]}...) -> {args.out}",
            file=sys.stderr,
        )
    else:
        sys.stdout.write(envelope.decode("ascii") + "\n")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from agent.delivery.mqtt import no_connack
    from agent.errors import SignatureError
    from agent.protocol import change as ch
    from agent.protocol.dsse import open_envelope
    from agent.protocol.topics import cmd_topic

    try:
        envelope = Path(args.envelope).read_bytes().strip()
    except OSError as exc:
        raise UsageError(f"cannot read {args.envelope!r}: {exc.strerror}") from None
    try:
        ptype, body, _ = open_envelope(envelope)
        if ptype != ch.CHANGE_PAYLOAD_TYPE:
            raise UsageError(f"{args.envelope!r} is not a configuration change ({ptype[:60]!r})")
        target = ch.parse(body)
    except (SignatureError, ch.ChangeRefused) as exc:
        raise UsageError(f"{args.envelope!r} is not a signed configuration change: {exc}") from None
    devices = [target.device] if target.device else list(args.to)
    if not devices:
        raise UsageError("a site-wide change needs --to DEVICE for each device to deliver it to")
    client, link = _push_client(args.config, args.username)
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            refused.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    where = f"{link.host}:{link.port}"
    try:
        client.connect(link.host, link.port, keepalive=link.keepalive_s)
    except OSError as exc:
        raise BrokerError(f"cannot reach the MQTT broker at {where} ({exc})") from None
    client.loop_start()
    try:
        if not connected.wait(link.timeout_s):  # said as a connection problem, not a missing ack
            raise BrokerError(no_connack(where, link.timeout_s))
        if refused:
            raise BrokerError(f"the MQTT broker at {where} refused the connection: {refused[0]}")
        for device in devices:
            topic = cmd_topic(link.topic_prefix, target.site, device)
            info = client.publish(
                topic, envelope, qos=1, retain=True
            )  # retained: a device offline gets it later
            info.wait_for_publish(link.timeout_s)
            if not info.is_published():
                raise BrokerError(f"the broker did not acknowledge the change on {topic}")
            print(f"pushed version {target.version} to {topic} (retained)")
    finally:
        client.disconnect()
        client.loop_stop()
    return 0


@dataclass(frozen=True)
class _Link:
    """Where `config push` publishes."""

    host: str
    port: int
    topic_prefix: str
    keepalive_s: int
    timeout_s: float


def _push_client(path: str, username: str) -> tuple[Any, _Link]:
    """A paho client for the file's [mqtt] (an operator's device-style config), or else for its
    [ingest] (the central side's own file, with the ingest worker's own client settings)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from agent import config
    from agent.delivery.mqtt import read_password

    client_id = f"{username}-push-{int(time.time())}"
    m = config.load(path).mqtt
    if m is not None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        client.username_pw_set(username, read_password(m.credentials_file))
        if m.tls:
            client.tls_set(ca_certs=m.ca_file or None, certfile=m.cert_file or None, keyfile=m.key_file or None)
        return client, _Link(m.host, m.port, m.topic_prefix, m.keepalive_s, m.connect_timeout_s)
    if "ingest" not in config.read_toml(path):
        raise UsageError(f"{path!r} has neither [mqtt] nor [ingest]: nothing says how to reach the broker")
    from agent.central import config as central
    from agent.central.ingest.worker import mqtt_client

    ing = central.load(path)
    return mqtt_client(ing, client_id), _Link(ing.host, ing.port, ing.topic_prefix, ing.keepalive_s, 10.0)


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from agent.central.config_status import lines, status
    from agent.commands.ingest import existing_store

    store = existing_store(args)
    try:
        entries = status(store)
    finally:
        store.close()
    if args.json:
        for e in entries:
            print(json.dumps(e.to_json(), sort_keys=True))
    else:
        print("\n".join(lines(entries)))
    return 0
