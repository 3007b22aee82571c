"""The device's side of signed remote configuration: verify, decide, apply, remember."""
