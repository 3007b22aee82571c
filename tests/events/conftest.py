"""The `device` fixture for tests/events (its helpers live in tests/events/eventkit.py)."""

from __future__ import annotations

import pytest

from tests.events.eventkit import Device, make_device


@pytest.fixture
def device() -> Device:
    return make_device(seed=bytes(range(32)))
