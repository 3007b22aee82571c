"""Central side: verify, the trust store (registry), ingest and its store; never imported by a device."""
