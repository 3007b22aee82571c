"""Transports that carry envelopes off the device (MQTT), and the loop that drains the outbox."""
