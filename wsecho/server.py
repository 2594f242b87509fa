"""
Assembly of a wsecho server from its settings.
"""

from __future__ import annotations

from twisted.application.service import IService, MultiService
from twisted.internet.interfaces import IReactorCore

from wsecho.acceleration import logAcceleration
from wsecho.echo import EchoServerFactory, quietAutobahn
from wsecho.limits import raiseOpenFileLimit
from wsecho.listening import (
    BindError,
    EndpointListener,
    ListeningService,
    SocketListener,
    bindDescription,
    bindDualStack,
)
from wsecho.settings import Settings
from wsecho.shutdown import DrainService, exitCleanlyOnSignals
from wsecho.web import buildSite


def buildServer(settings: Settings, reactor: IReactorCore | None = None) -> IService:
    """
    Bind the listening socket and build the services of a server: one that
    serves from this process, or a pool of worker processes.

    @raise SystemExit: The port cannot be bound, or cannot be shared by
        workers; the message gives the reason.
    """
    if reactor is None:
        from twisted.internet import reactor
    listener = bindListener(settings)
    raiseOpenFileLimit(settings.maxConnections)
    exitCleanlyOnSignals(reactor)
    if settings.workers == 1:
        return serve(settings, listener, reactor)
    if not isinstance(listener, SocketListener):
        raise SystemExit(
            f"twistd wsecho: --workers {settings.workers} needs a TCP or TLS port, "
            f"not {settings.port!r}; use a port number or a tcp:, tcp6: or ssl: "
            "description"
        )
    from wsecho.workers import WorkerPool

    return WorkerPool(listener, settings, reactor)


def bindListener(settings: Settings) -> SocketListener | EndpointListener:
    """
    Bind the socket for the settings' port.

    @raise SystemExit: It cannot be bound.
    """
    try:
        if isinstance(settings.port, int):
            return bindDualStack(settings.port)
        return bindDescription(settings.port)
    except BindError as error:
        raise SystemExit(f"twistd wsecho: {error}") from None


def serve(
    settings: Settings,
    listener: SocketListener | EndpointListener,
    reactor: IReactorCore,
) -> IService:
    """
    Build the services that serve WebSockets on a listener in this process.
    """
    quietAutobahn()
    logAcceleration()
    factory = EchoServerFactory(settings, reactor=reactor)
    site = buildSite(factory, reactor)
    server = MultiService()
    # MultiService stops its children in reverse order: listening stops
    # first, then the open connections are drained.
    DrainService(factory, reactor).setServiceParent(server)
    ListeningService(listener, site, reactor).setServiceParent(server)
    return server
