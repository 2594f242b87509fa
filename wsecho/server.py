"""
Assembly of a wsecho server from its settings.
"""

from __future__ import annotations

from twisted.application.service import IService, MultiService
from twisted.internet.interfaces import IReactorCore

from wsecho.acceleration import logAcceleration
from wsecho.echo import EchoServerFactory, quietAutobahn
from wsecho.limits import raiseOpenFileLimit
from wsecho.listening import BindError, ListeningService, bindDescription, bindDualStack
from wsecho.settings import Settings
from wsecho.shutdown import DrainService, exitCleanlyOnSignals
from wsecho.web import buildSite


def buildServer(settings: Settings, reactor: IReactorCore | None = None) -> IService:
    """
    Bind the listening socket and build the services of a server.

    @raise SystemExit: The port cannot be bound; the message says why.
    """
    if reactor is None:
        from twisted.internet import reactor
    quietAutobahn()
    factory = EchoServerFactory(settings, reactor=reactor)
    site = buildSite(factory, reactor)
    try:
        if isinstance(settings.port, int):
            listener = bindDualStack(settings.port)
        else:
            listener = bindDescription(settings.port)
    except BindError as error:
        raise SystemExit(f"twistd wsecho: {error}") from None
    raiseOpenFileLimit(settings.maxConnections)
    logAcceleration()
    exitCleanlyOnSignals(reactor)

    server = MultiService()
    # MultiService stops its children in reverse order: listening stops
    # first, then the open connections are drained.
    DrainService(factory, reactor).setServiceParent(server)
    ListeningService(listener, site, reactor).setServiceParent(server)
    return server
