"""Device side of delivery: emitter, outbox, sender, heartbeat, the MQTT session, acks."""
