"""Tests of the central ingest: classify, store, acks, workers on a real broker."""
