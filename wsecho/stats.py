"""
Counters of a server's traffic, read by C{/health} and C{/metrics}.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Traffic:
    """
    Messages and payload bytes each way.
    """

    messagesIn: int = 0
    messagesOut: int = 0
    bytesIn: int = 0
    bytesOut: int = 0

    def add(self, other: Traffic) -> None:
        """
        Add another count to this one.
        """
        self.messagesIn += other.messagesIn
        self.messagesOut += other.messagesOut
        self.bytesIn += other.bytesIn
        self.bytesOut += other.bytesOut


@dataclass
class ServerStats:
    """
    Totals since the server started.

    @ivar startedAt: When the server started, in seconds of its clock.
    @ivar connections: WebSocket connections opened.
    @ivar closedTraffic: The traffic of connections that have closed; open
        ones keep their own count until they close.
    @ivar closeCodes: Closed connections by close code.
    @ivar handshakeFailures: Failed opening handshakes by reason.
    @ivar rejections: Connections turned away before the handshake by reason.
    """

    startedAt: float
    connections: int = 0
    closedTraffic: Traffic = field(default_factory=Traffic)
    closeCodes: Counter[int] = field(default_factory=Counter)
    handshakeFailures: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
