"""Central side: verify, the trust store (registry), ingest and its store; no device imports it."""
