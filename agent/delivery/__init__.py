"""Device side of delivery: emitter, outbox, sender, heartbeat, sessions, trusted ingest keys."""
