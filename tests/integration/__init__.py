"""End-to-end tests of the CLI on a real broker."""
