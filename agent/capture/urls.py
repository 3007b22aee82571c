"""Camera URLs as they may appear in messages: credentials and query strings replaced by ***."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """rtsp://admin:pw@cam:554/s?token=x -> rtsp://***@cam:554/s?***; a URL that does not parse
    is replaced whole, since its credentials cannot be located."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return "<camera URL>"
    if not parts.scheme or not host:
        return "<camera URL>"
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username is not None or parts.password is not None:
        netloc = f"***@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))
