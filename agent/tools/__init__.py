"""Small driver programs for tests and benchmarks (no camera, no detector)."""
