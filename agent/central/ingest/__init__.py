"""Central ingest: subscribe (shared), verify, dedupe, store, quarantine, acknowledge.

Modules: classify (one message -> event row, manifest row, reject or ignored), batch (a batch
through classify + store + marks), acks (the per-device ack rate limit; the ack itself is
agent.protocol.acks), worker (the MQTT worker), stats (the report). The database is
agent.central.store; topics are agent.protocol.topics.
"""
