"""Provisioning: the operator's site bundle and the device's first boot and stick updates."""
