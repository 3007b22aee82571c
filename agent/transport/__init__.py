"""Transports that carry envelopes off the device: one MQTT 5 session (mqtt) and ingest acks (acks)."""
