"""An in-memory broker and its sessions: the session port's test backend, with scripted failures.

MemoryBroker keeps what was published (in order, and the retained control messages), answers
every publish with a PUBACK at once, and can be told to go down (connects refused, sessions
dropped), to refuse a topic with a reason code, or to deliver a message (an ingest ack) to the
sessions subscribed to its topic. No network, no thread: a sender over it is deterministic.
"""

from __future__ import annotations

import threading

from agent.delivery.session import Connected, Disconnected, Events, PubAck, Received, SessionFactory
from agent.errors import BrokerError
from agent.protocol import topics


class MemoryBroker:
    def __init__(self, receive_maximum: int = 100) -> None:
        self.receive_maximum = receive_maximum
        self.published: list[tuple[str, bytes]] = []  # accepted QoS 1 publishes, in order
        self.retained: dict[str, bytes] = {}  # status and manifest, as a real broker keeps them
        self.refuse: dict[str, int] = {}  # topic -> PUBACK reason code (>= 0x80), e.g. 0x87
        self.connects = 0
        self._up = True
        self._sessions: list[MemorySession] = []
        self._lock = threading.Lock()

    @property
    def up(self) -> bool:
        return self._up

    def down(self, reason: str = "broker went away") -> None:
        """An outage: every session is dropped and new connects are refused until restore()."""
        with self._lock:
            self._up = False
            sessions, self._sessions = self._sessions, []
        for s in sessions:
            s.dropped(reason)

    def restore(self) -> None:
        self._up = True

    def deliver(self, topic: str, payload: bytes, retained: bool = False) -> int:
        """Send a message to every session subscribed to topic; how many received it."""
        with self._lock:
            targets = [s for s in self._sessions if topic in s.subscriptions]
        for s in targets:
            s.events.put(Received(topic, payload, retained))
        return len(targets)

    def factory(
        self, device: str, site: str, manifest: bytes | None = None, subscribe_acks: bool = False,
        prefix: str = topics.DEFAULT_PREFIX,
    ) -> SessionFactory:
        """Sessions for one device, as Sender(open_session=...) takes them."""

        def open_session(events: Events) -> MemorySession:
            return MemorySession(self, events, device, site, manifest, subscribe_acks, prefix)

        return open_session

    # -- used by MemorySession

    def attach(self, session: MemorySession) -> None:
        with self._lock:
            if not self._up:
                raise BrokerError("the in-memory broker is down")
            self.connects += 1
            self._sessions.append(session)

    def detach(self, session: MemorySession) -> None:
        with self._lock:
            if session in self._sessions:
                self._sessions.remove(session)

    def accept(self, topic: str, payload: bytes, retain: bool) -> int:
        with self._lock:
            code = self.refuse.get(topic, 0)
            if code < 0x80:
                if retain:
                    self.retained[topic] = payload
                else:
                    self.published.append((topic, payload))
            return code


class MemorySession:
    """One connection to a MemoryBroker (the Session protocol)."""

    def __init__(self, broker: MemoryBroker, events: Events, device: str, site: str,
                 manifest: bytes | None = None, subscribe_acks: bool = False,
                 prefix: str = topics.DEFAULT_PREFIX) -> None:
        self.broker = broker
        self.events = events
        self.status_topic = topics.status_topic(prefix, site, device)
        self.manifest_topic = topics.manifest_topic(prefix, site, device)
        self.subscriptions = {topics.ack_topic(prefix, site, device)} if subscribe_acks else set()
        self.manifest = manifest
        self.window = max(1, broker.receive_maximum - 2)  # as MQTT: two for status and manifest
        self._mid = 0
        self._connected = False

    def connect(self) -> None:
        self.broker.attach(self)
        self._connected = True
        self.broker.accept(self.status_topic, b"online", retain=True)
        if self.manifest is not None:
            self.broker.accept(self.manifest_topic, self.manifest, retain=True)
        self.events.put(Connected(self.broker.receive_maximum))

    def publish(self, topic: str, payload: bytes) -> int | None:
        if not self._connected:
            return None
        self._mid += 1
        self.events.put(PubAck(self._mid, self.broker.accept(topic, payload, retain=False)))
        return self._mid

    def publish_retained(self, topic: str, payload: bytes) -> None:
        if self._connected:
            self.broker.accept(topic, payload, retain=True)

    def announce(self, manifest: bytes | None, birth: bytes | None) -> None:
        self.manifest = manifest
        if self._connected:
            self.broker.accept(self.status_topic, b"online", retain=True)
            if manifest is not None:
                self.broker.accept(self.manifest_topic, manifest, retain=True)

    def dropped(self, reason: str) -> None:
        """The broker dropped this session (an outage)."""
        self._connected = False
        self.events.put(Disconnected(reason))

    def close(self, graceful: bool = False) -> None:
        if graceful and self._connected:
            self.broker.accept(self.status_topic, b"offline", retain=True)
        self._connected = False
        self.broker.detach(self)
