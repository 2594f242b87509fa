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


def applyBackpressure(transport: ITransport) -> None:
    """
    Register a L{ReadPause} on a transport that has no producer yet.
    """
    transport.registerProducer(ReadPause(transport), True)
