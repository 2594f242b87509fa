"""
Matching of the C{Origin} header of browser handshakes against patterns.
"""

from __future__ import annotations

import re


def compileOrigins(patterns: list[str]) -> re.Pattern[str] | None:
    """
    Compile origin patterns, where C{*} matches any run of characters, into
    one case-insensitive expression matching a whole origin.

    @return: The expression, or L{None} when C{patterns} allows every origin.
    """
    if "*" in patterns:
        return None
    alternatives = [
        ".*".join(re.escape(part) for part in pattern.lower().split("*"))
        for pattern in patterns
    ]
    return re.compile("|".join(f"(?:{alternative})" for alternative in alternatives))


def isOriginAllowed(
    origin: str | None, allowed: re.Pattern[str] | None, host: str | None = None
) -> bool:
    """
    Tell whether a handshake with this C{Origin} header may proceed.

    A missing header (a client that is not a browser) is always allowed, and
    so is a page served by this server: an origin whose host and port are the
    request's C{Host}. The origin C{null}, sent by sandboxed pages and local
    files, is allowed only when every origin is, or when C{null} is one of
    the patterns.
    """
    if origin is None or allowed is None:
        return True
    origin = origin.strip().lower()
    if host and origin.partition("://")[2] == host.strip().lower():
        return True
    return allowed.fullmatch(origin) is not None
