"""Central ingest: subscribe (shared), verify, dedupe, store, quarantine, acknowledge.

Modules: topics (which topics are events), classify (one message -> event row or reject),
store (SQLite / PostgreSQL), pipeline (a batch through classify + store + marks), acks (signed
ack envelopes and their rate limit), service (the MQTT worker), stats (the report).
"""
