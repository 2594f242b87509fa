"""
The implementation Autobahn uses for UTF-8 validation and frame masking.
"""

from __future__ import annotations

import autobahn.websocket
from twisted.logger import Logger

log = Logger()


def logAcceleration(usesNative: bool | None = None) -> bool:
    """
    Log whether Autobahn's native acceleration (NVX) is active.

    Without it, large messages are about 80 times slower (measured with
    64 KiB binary echo on CPython 3.11, Autobahn 26.11), so its absence is a
    warning: an install from source without a compiler loses it silently,
    and C{AUTOBAHN_USE_NVX=0} turns it off.

    @param usesNative: The state to report; Autobahn's own flag by default.
    @return: Whether NVX is active.
    """
    if usesNative is None:
        usesNative = bool(getattr(autobahn.websocket, "USES_NVX", False))
    if usesNative:
        log.info("Autobahn native acceleration (NVX) is active", nvx=True)
    else:
        log.warn(
            "Autobahn native acceleration (NVX) is not active: UTF-8 "
            "validation and masking run in pure Python and large messages "
            "are much slower; install Autobahn from its binary wheel and "
            "unset AUTOBAHN_USE_NVX",
            nvx=False,
        )
    return usesNative
