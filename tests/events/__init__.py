"""Tests of what leaves the device: signed events, the privacy manifest, verification."""
