"""Small unit tests: CLI, config, signing, outbox, import rules."""
