"""The session port: what the sender needs from a broker connection, and the events it reads back.

A session never decides what to send or delete: it turns the network into a queue of events
(Connected, Disconnected, PubAck, Received) that the sender thread consumes. Backends: the MQTT
session (agent.delivery.mqtt, paho-mqtt) and the in-memory one (agent.delivery.memory, for tests).
"""

from __future__ import annotations

import queue
from dataclasses import dataclass
from typing import Callable, Protocol, Union


@dataclass(frozen=True)
class Connected:
    receive_maximum: int


@dataclass(frozen=True)
class Disconnected:
    reason: str


@dataclass(frozen=True)
class PubAck:
    mid: int
    code: int  # MQTT v5 reason code; >= 0x80 is a failure (0x87 not authorized)


@dataclass(frozen=True)
class Received:
    """A message the device received on a topic it subscribed to (an ingest ack)."""

    topic: str
    payload: bytes
    retained: bool = False  # the broker's stored copy, handed over on subscribe (a cmd topic)


class Wake:
    """Put on the events queue when the outbox has a new row: the sender looks again."""


WAKE = Wake()


class Announce:
    """Put on the events queue to publish the birth and the manifest again (a remote change)."""


ANNOUNCE = Announce()

SessionEvent = Union[Connected, Disconnected, PubAck, Received, Wake, Announce]
Events = queue.SimpleQueue[SessionEvent]


class Session(Protocol):
    """One connection to the broker; never resumed once lost (the sender opens another)."""

    @property
    def window(self) -> int:
        """Publishes the sender may have unanswered (the broker's Receive Maximum, less control)."""
        ...

    def connect(self) -> None:
        """Connect and wait for the broker's answer; BrokerError (one line) when that fails."""
        ...

    def publish(self, topic: str, payload: bytes) -> int | None:
        """Queue a QoS 1 publish: its packet id, or None when the connection is gone."""
        ...

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """A retained QoS 0 publish outside the outbox (Home Assistant discovery and state)."""
        ...

    def announce(self, manifest: bytes | None, birth: bytes | None) -> None:
        """Publish status, manifest and birth again, retained (a new manifest, or asked to)."""
        ...

    def close(self, graceful: bool = False) -> None:
        """Drop the connection (graceful: say 'offline' first)."""
        ...


# Opens a new, unconnected session that puts its events on the given queue.
SessionFactory = Callable[[Events], Session]
