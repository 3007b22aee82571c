"""Tests of the device's delivery half: outbox, sender, acks, broker outages, TLS and ACLs."""
