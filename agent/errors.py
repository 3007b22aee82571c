"""The AgentError tree: every error a person can fix, with a message that says how."""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent reports to a person. The message is one line with the fix."""

    exit_code = 2


class ConfigError(AgentError, ValueError):
    """A config file is missing, malformed, or has an unknown key or a bad value."""


class UsageError(AgentError, ValueError):
    """A command-line argument is wrong (a missing file, a bad value)."""


class ModelError(AgentError, RuntimeError):
    """A model file is missing, corrupt, of the wrong hash, or fits no decoder."""


class DelegateUnavailable(AgentError, RuntimeError):
    """An accelerator (Edge TPU) was asked for but cannot be loaded."""


class SourceError(AgentError, RuntimeError):
    """A camera or video source cannot be opened or stopped delivering frames."""


class AssetError(AgentError, RuntimeError):
    """A download or local import failed, or a file's SHA-256 differs from the pinned one."""


class SignatureError(AgentError, ValueError):
    """An envelope failed verification: the reason says which check."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class EgressViolation(AgentError, ValueError):
    """An outgoing payload broke the egress guard (schema, size or image data) and was refused."""


class BrokerError(AgentError, RuntimeError):
    """The MQTT broker cannot be reached or refused us."""


class StateError(AgentError, RuntimeError):
    """The state directory (outbox, counters, keys) cannot be used."""
