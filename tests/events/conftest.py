"""The `device` fixture for tests/events (helpers live in eventkit.py, a name no other folder uses)."""

from __future__ import annotations

import pytest

from eventkit import Device, make_device


@pytest.fixture
def device() -> Device:
    return make_device(seed=bytes(range(32)))
