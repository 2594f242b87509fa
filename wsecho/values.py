"""
Parsers for option values; each raises L{usage.UsageError} naming the value
and where it came from.
"""

from __future__ import annotations

import os
import re

from twisted.internet import endpoints
from twisted.internet.testing import MemoryReactor
from twisted.python import usage

MAX_PORT = 65535
SIZE_UNITS = {"": 1, "k": 1 << 10, "ki": 1 << 10, "m": 1 << 20, "mi": 1 << 20}
SIZE_UNITS |= {"g": 1 << 30, "gi": 1 << 30}
SIZE_PATTERN = re.compile(r"(\d+)\s*([kmg]i?)?b?", re.IGNORECASE)


def invalid(name: str, value: str, source: str, expected: str) -> usage.UsageError:
    """
    Build the usage error for a bad value.
    """
    return usage.UsageError(f"invalid {name} {value!r} from {source}: {expected}")


def parsePort(value: str, source: str) -> int | str:
    """
    Parse a port number or validate a Twisted server endpoint description.

    @param value: The text from the command line or the environment.
    @param source: Where C{value} came from, for the error message.
    @return: The port number for a bare number, else the description.
    @raise usage.UsageError: C{value} is neither.
    """
    text = value.strip()
    if text.isdigit():
        number = int(text)
        if number > MAX_PORT:
            raise invalid("port", value, source, "a port number must be 0 to 65535")
        return number
    if ":" not in text:
        raise invalid(
            "port",
            value,
            source,
            "expected a port number or an endpoint description such as tcp:8080",
        )
    try:
        endpoints.serverFromString(MemoryReactor(), text)
    except Exception as error:
        raise invalid("endpoint description", value, source, str(error)) from None
    return text


RESERVED_PATHS = ("/health", "/metrics")


def parsePath(value: str, source: str) -> str:
    """
    Validate the URL path of the WebSocket.

    @raise usage.UsageError: The path does not start with C{/}, contains a
        character that cannot appear in a plain URL path, or is taken by
        C{/health} or C{/metrics}.
    """
    if not value.startswith("/"):
        raise invalid("path", value, source, "it must start with '/', as in /ws")
    checkUTF8("path", value, source)
    if any(character in value for character in "?# \t\r\n") or "//" in value:
        raise invalid(
            "path",
            value,
            source,
            "use a plain URL path without '?', '#', spaces or empty segments",
        )
    for reserved in RESERVED_PATHS:
        if value.rstrip("/") == reserved or value.startswith(reserved + "/"):
            raise invalid(
                "path",
                value,
                source,
                f"{reserved} is reserved for the server; choose another path",
            )
    return value


def parseSeconds(value: str, source: str, name: str, allowZero: bool) -> float:
    """
    Parse a duration in seconds.

    @param allowZero: Whether 0, which turns the feature off, is accepted.
    @raise usage.UsageError: The value is not a finite number in range.
    """
    expected = "expected a number of seconds" + (
        ", 0 or more" if allowZero else " above 0"
    )
    try:
        seconds = float(value)
    except ValueError:
        raise invalid(name, value, source, expected) from None
    if not (0 <= seconds < float("inf")) or (seconds == 0 and not allowZero):
        raise invalid(name, value, source, expected)
    return seconds


def parseSize(value: str, source: str, name: str) -> int:
    """
    Parse a size in bytes, with an optional unit: C{16777216}, C{16M}, C{16MiB}.

    @raise usage.UsageError: The value is not a positive size.
    """
    match = SIZE_PATTERN.fullmatch(value.strip())
    if match is None or int(match.group(1)) == 0:
        raise invalid(
            name,
            value,
            source,
            "expected a size above 0 in bytes, such as 16777216 or 16MiB",
        )
    number, unit = match.groups()
    return int(number) * SIZE_UNITS[(unit or "").lower()]


def parseCount(value: str, source: str, name: str, minimum: int) -> int:
    """
    Parse a whole number no smaller than C{minimum}.

    @raise usage.UsageError: The value is not such a number.
    """
    text = value.strip()
    if not text.isdigit() or int(text) < minimum:
        raise invalid(
            name, value, source, f"expected a whole number, {minimum} or more"
        )
    return int(text)


def parseOrigins(value: str, source: str) -> list[str]:
    """
    Parse a comma-separated list of origin patterns, where C{*} matches any
    run of characters: C{https://example.com,https://*.example.com}.

    @raise usage.UsageError: The list is empty or has an empty entry.
    """
    patterns = [pattern.strip() for pattern in value.split(",")]
    if not all(patterns):
        raise invalid(
            "origin list",
            value,
            source,
            "expected comma-separated origins such as https://example.com, or *",
        )
    return patterns


def parseSwitch(value: str, source: str, name: str) -> bool:
    """
    Parse C{on} or C{off}.

    @raise usage.UsageError: The value is neither.
    """
    text = value.strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise invalid(name, value, source, "expected on or off")


def parseWorkers(value: str, source: str) -> int:
    """
    Parse a number of worker processes, or C{auto} for one per CPU core
    this process may run on.

    @raise usage.UsageError: The value is neither.
    """
    if value.strip().lower() == "auto":
        return len(os.sched_getaffinity(0))
    text = value.strip()
    if not text.isdigit() or int(text) < 1:
        raise invalid(
            "worker count", value, source, "expected auto or a whole number, 1 or more"
        )
    return int(text)


def parsePrefix(value: str, source: str) -> str:
    """
    Check that the prefix can be sent in a text message.

    @raise usage.UsageError: The value is not valid UTF-8 text.
    """
    checkUTF8("prefix", value, source)
    return value


def checkUTF8(name: str, value: str, source: str) -> None:
    """
    Reject text with bytes that are not UTF-8, which the command line or the
    environment passes on as lone surrogates.

    @raise usage.UsageError: C{value} cannot be encoded as UTF-8.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        printable = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise invalid(name, printable, source, "it must be valid UTF-8 text") from None
