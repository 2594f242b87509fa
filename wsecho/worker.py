"""
A worker process: serves on a listening socket inherited from the twistd
process that started it. Run by L{wsecho.workers.WorkerPool} as
C{python -m wsecho.worker --fd N --settings JSON}.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys

from twisted.logger import globalLogBeginner, textFileLogObserver

from wsecho.listening import SocketListener, recordListen
from wsecho.settings import Settings


def listenerFor(fd: int, settings: Settings) -> SocketListener:
    """
    Wrap the inherited socket, with the TLS context of an C{ssl:} port.
    """
    inherited = socket.socket(fileno=fd)
    description = str(settings.port)
    tls = None
    if isinstance(settings.port, str):
        recorded = recordListen(settings.port)
        if recorded is not None:
            tls = recorded[3]
    return SocketListener(inherited, description, tls)


def main(arguments: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wsecho.worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--settings", required=True)
    parsed = parser.parse_args(arguments)

    from twisted.internet import reactor

    from wsecho.server import serve
    from wsecho.shutdown import exitCleanlyOnSignals

    settings = Settings(**{**json.loads(parsed.settings), "workers": 1})
    globalLogBeginner.beginLoggingTo(
        [textFileLogObserver(sys.stdout)], redirectStandardIO=False
    )
    service = serve(settings, listenerFor(parsed.fd, settings), reactor)
    exitCleanlyOnSignals(reactor)
    reactor.callWhenRunning(service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()


if __name__ == "__main__":
    main()
