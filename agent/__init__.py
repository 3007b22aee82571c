"""edge-agent: privacy-first video analytics that publishes signed, anonymized metadata events."""

__version__ = "0.1.0"
