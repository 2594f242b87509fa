"""
Graceful stop: close every WebSocket with 1001 (going away), wait for the
closing handshakes, then drop whatever remains.
"""

from __future__ import annotations

import signal

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall, IReactorCore, IReactorTime
from twisted.logger import Logger

from wsecho.echo import EchoServerFactory

log = Logger()


class DrainService(Service):
    """
    On stop, close the factory's open WebSockets with code 1001 and wait up to
    C{drainTimeout} seconds for them to finish closing.
    """

    def __init__(self, factory: EchoServerFactory, clock: IReactorTime) -> None:
        self.factory = factory
        self.clock = clock

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        connections = list(self.factory.openConnections)
        if not connections:
            log.info("No WebSocket connections are open; nothing to close")
            return None
        timeout = self.factory.settings.drainTimeout
        log.info(
            "Closing {count} WebSocket connections with status 1001 (going away)",
            count=len(connections),
        )
        closing = [connection.goAway() for connection in connections]
        drained = DeferredList(closing)
        expiry = self.clock.callLater(timeout, self.dropRemaining)
        drained.addCallback(self.drained, expiry, len(connections))
        return drained

    def dropRemaining(self) -> None:
        for connection in list(self.factory.openConnections):
            connection.dropConnection(abort=True)

    def drained(self, results: list, expiry: IDelayedCall, count: int) -> None:
        if expiry.active():
            expiry.cancel()
        clean = sum(1 for _, wasClean in results if wasClean)
        log.info(
            "{clean} of {count} WebSocket connections closed cleanly; "
            "{dropped} were dropped",
            clean=clean,
            count=count,
            dropped=count - clean,
        )


def exitCleanlyOnSignals(reactor: IReactorCore) -> None:
    """
    Make SIGTERM and SIGINT stop the reactor so that twistd exits with
    status 0 once the graceful stop is done.

    twistd's own handlers make it kill itself with the signal after
    shutdown, which C{docker stop} and process managers report as a failure.
    The handlers are replaced once the reactor runs, after it has installed
    its own.
    """

    def stop(number: int, frame: object) -> None:
        log.info("Received {signal}, stopping", signal=signal.Signals(number).name)
        reactor.callFromThread(reactor.stop)

    def install() -> None:
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    reactor.callWhenRunning(install)
