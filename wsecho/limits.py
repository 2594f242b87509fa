"""
The process's limit on open files, which bounds its connections.
"""

from __future__ import annotations

import resource

from twisted.logger import Logger

log = Logger()

SPARE_DESCRIPTORS = 64
"""
Descriptors kept for the listening socket, log files and the like.
"""


def raiseOpenFileLimit(maxConnections: int) -> int:
    """
    Raise the soft limit on open files to the hard limit, log the result, and
    warn when it is too low for C{maxConnections}.

    @return: The soft limit in force afterwards.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            log.warn(
                "Cannot raise the open-file limit from {soft} to {target}: {error}",
                soft=soft,
                target=target,
                error=error,
            )
    fields = dict(limit=soft, maxConnections=maxConnections)
    if soft < maxConnections + SPARE_DESCRIPTORS:
        log.warn(
            "The open-file limit of {limit} is too low for --max-connections "
            "{maxConnections}; raise it (ulimit -n, or --ulimit nofile= for "
            "Docker) or lower --max-connections",
            **fields,
        )
    else:
        log.info(
            "Open-file limit: {limit}, enough for --max-connections {maxConnections}",
            **fields,
        )
    return soft
