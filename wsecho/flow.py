"""
Backpressure: stop reading from a client while its replies cannot be sent.
"""

from __future__ import annotations

from twisted.internet.interfaces import IPushProducer, ITransport
from twisted.protocols.policies import ProtocolWrapper
from zope.interface import implementer


@implementer(IPushProducer)
class ReadPause:
    """
    A producer registered on a connection's transport that pauses reading
    from the socket whenever the transport's send buffer passes its
    high-water mark, and resumes once it has drained.

    An echo writes what it reads, so a client that sends without reading
    would otherwise make the server buffer replies without bound.
    """

    __slots__ = ("socket",)

    def __init__(self, transport: ITransport) -> None:
        while isinstance(transport, ProtocolWrapper):
            # Under TLS, reading is paused on the TCP transport beneath.
            transport = transport.transport
        self.socket = transport

    def pauseProducing(self) -> None:
        self.socket.pauseProducing()

    def resumeProducing(self) -> None:
        self.socket.resumeProducing()

    def stopProducing(self) -> None:
        self.socket.stopProducing()


HIGH_WATER_MARK = 256 * 1024
"""
Bytes waiting to be sent past which a connection stops reading. Twisted's
TCP transport also reads at most this much at a time. Its default, 64 KiB,
made every 64 KiB echo pause and resume reading, and split each such
message across two reads.
"""


def applyBackpressure(transport: ITransport) -> None:
    """
    Register a L{ReadPause} on a transport that has no producer yet, and set
    its high-water mark.
    """
    pause = ReadPause(transport)
    if hasattr(pause.socket, "bufferSize"):
        pause.socket.bufferSize = HIGH_WATER_MARK
    transport.registerProducer(pause, True)
