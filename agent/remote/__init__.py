"""The device's side of signed remote configuration: verify, decide, apply at a frame boundary, remember."""
