"""
The HTTP channel of wsecho: a deadline for each request, and the hand-over
of the connection to a WebSocket protocol.
"""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall, IProtocol
from twisted.web.http import HTTPChannel


class WebSocketChannel(HTTPChannel):
    """
    An HTTP channel that drops clients too slow to send a request, and can
    hand its connection over to a WebSocket protocol.

    The idle timeout of L{HTTPChannel} restarts with every byte, so a client
    sending one byte every few seconds would hold the connection forever.
    Here a request must arrive whole within the site's C{requestTimeout}
    seconds of its first byte (or of the connection's start).

    @ivar upgradedTo: The protocol that now owns the connection, or L{None}
        while the channel still speaks HTTP.
    @ivar deadline: The call that drops the connection if the request in
        progress does not complete in time.
    """

    upgradedTo: IProtocol | None = None
    deadline: IDelayedCall | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self.startDeadline()

    def dataReceived(self, data: bytes) -> None:
        if self.deadline is None and not self._handlingRequest:
            self.startDeadline()
        super().dataReceived(data)

    def allContentReceived(self) -> None:
        self.cancelDeadline()
        super().allContentReceived()

    def connectionLost(self, reason: object) -> None:
        self.cancelDeadline()
        super().connectionLost(reason)

    def startDeadline(self) -> None:
        self.deadline = self.callLater(self.site.requestTimeout, self.requestTimedOut)

    def cancelDeadline(self) -> None:
        if self.deadline is not None:
            if self.deadline.active():
                self.deadline.cancel()
            self.deadline = None

    def requestTimedOut(self) -> None:
        self.deadline = None
        self.site.requestTimedOut(self.transport.getPeer())
        self.transport.abortConnection()

    def timeoutConnection(self) -> None:
        # An idle keep-alive connection reaching the site's idle timeout is
        # ordinary, so it is closed without the log line HTTPChannel writes.
        self.loseConnection()

    def rawDataReceived(self, data: bytes) -> None:
        # A client may send its first frame without waiting for the 101, so
        # bytes can arrive in the same read as the upgrade request. They pass
        # through the channel once and belong to the WebSocket.
        if self.upgradedTo is not None:
            self.upgradedTo.dataReceived(data)
        else:
            super().rawDataReceived(data)

    def switchProtocol(self, protocol: IProtocol) -> None:
        """
        Give the connection to C{protocol}; the channel sends nothing more.
        """
        self.cancelDeadline()
        self.upgradedTo = protocol
        self.transport = None
