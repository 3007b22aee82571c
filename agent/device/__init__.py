"""Device side, around the frame loop: the board and its profile, the host's health, systemd,
private state, the key-bound identity, coverage accounting, Home Assistant discovery and the pick-up
of saved geometry. Nothing here is imported by agent.central or agent.protocol."""
