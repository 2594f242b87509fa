"""
A log line for an event that can repeat many times a second.
"""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger


class RateLimitedLog:
    """
    Log the first of a kind of event at once, then at most one line per
    interval that counts the events since the previous line.

    @ivar format: A L{twisted.logger} format; it may use C{{count}}, the
        number of events the line stands for.
    """

    def __init__(
        self, logger: Logger, format: str, clock: IReactorTime, interval: float = 10.0
    ) -> None:
        self.logger = logger
        self.format = format
        self.clock = clock
        self.interval = interval
        self.pending = 0
        self.fields: dict[str, object] = {}
        self.lastLoggedAt: float | None = None
        self.flushCall: IDelayedCall | None = None

    def event(self, **fields: object) -> None:
        """
        Count one event; log now, or once the interval since the previous
        line is over.
        """
        self.pending += 1
        self.fields = fields
        if self.flushCall is not None:
            return
        now = self.clock.seconds()
        if self.lastLoggedAt is None or now - self.lastLoggedAt >= self.interval:
            self.flush()
        else:
            delay = self.lastLoggedAt + self.interval - now
            self.flushCall = self.clock.callLater(delay, self.flush)

    def flush(self) -> None:
        """
        Log the events counted since the previous line.
        """
        self.flushCall = None
        if not self.pending:
            return
        self.logger.warn(self.format, count=self.pending, **self.fields)
        self.pending = 0
        self.lastLoggedAt = self.clock.seconds()

    def cancel(self) -> None:
        """
        Drop a scheduled line, for a server that is stopping.
        """
        if self.flushCall is not None:
            self.flushCall.cancel()
            self.flushCall = None
