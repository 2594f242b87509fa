"""
A pool of worker processes sharing one listening socket.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.error import ProcessDone
from twisted.internet.interfaces import IDelayedCall, IReactorProcess
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from wsecho.addresses import formatHost
from wsecho.listening import SocketListener
from wsecho.settings import Settings

log = Logger()

FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 10.0
"""
Seconds a worker must have run for its next restart to come at once again.
"""

KILL_GRACE = 5.0
"""
Seconds past the drain timeout after which a stopping worker is killed.
"""


class WorkerProcess(ProcessProtocol):
    """
    One worker process, reporting its end to the pool.
    """

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.ended: Deferred[None] = Deferred()

    def processEnded(self, reason: Failure) -> None:
        self.ended.callback(None)
        self.pool.workerEnded(self, reason)


class WorkerPool(Service):
    """
    Start C{settings.workers} processes that each serve on the listening
    socket, restart any that dies, and stop them all gracefully.

    Each worker counts its own connections, so C{/health}, C{/metrics} and
    C{--max-connections} apply per worker.
    """

    def __init__(
        self, listener: SocketListener, settings: Settings, reactor: IReactorProcess
    ) -> None:
        self.listener = listener
        self.settings = settings
        self.reactor = reactor
        self.workers: dict[int, WorkerProcess] = {}
        self.startedAt: dict[int, float] = {}
        self.restartDelay: dict[int, float] = {}
        self.pendingRestarts: dict[int, IDelayedCall] = {}

    def startService(self) -> None:
        super().startService()
        host, port = self.listener.socket.getsockname()[:2]
        log.info(
            "Listening for connections on port {port} ({address}) with {count} workers",
            port=port,
            address=f"[{host}]:{port}" if ":" in host else f"{formatHost(host)}:{port}",
            endpoint=self.listener.description,
            count=self.settings.workers,
        )
        for index in range(self.settings.workers):
            self.spawn(index)

    def spawn(self, index: int) -> None:
        self.pendingRestarts.pop(index, None)
        fd = self.listener.socket.fileno()
        settings = dataclasses.asdict(self.settings)
        arguments = [
            sys.executable,
            "-m",
            "wsecho.worker",
            "--fd",
            str(fd),
            "--settings",
            json.dumps(settings),
        ]
        worker = WorkerProcess(self, index)
        transport = self.reactor.spawnProcess(
            worker,
            sys.executable,
            arguments,
            env=dict(os.environ),
            childFDs={0: 0, 1: 1, 2: 2, fd: fd},
        )
        self.workers[index] = worker
        self.startedAt[index] = self.reactor.seconds()
        log.info("Started worker {index} (pid {pid})", index=index, pid=transport.pid)

    def workerEnded(self, worker: WorkerProcess, reason: Failure) -> None:
        if self.workers.get(worker.index) is not worker:
            return
        del self.workers[worker.index]
        if not self.running:
            return
        status = describeEnd(reason)
        delay = self.nextDelay(worker.index)
        log.warn(
            "Worker {index} {status}; restarting it in {delay} s",
            index=worker.index,
            status=status,
            delay=delay,
        )
        self.pendingRestarts[worker.index] = self.reactor.callLater(
            delay, self.spawn, worker.index
        )

    def nextDelay(self, index: int) -> float:
        """
        Restart at once after a long run, and back off a worker that keeps
        dying young.
        """
        lived = self.reactor.seconds() - self.startedAt.get(index, 0.0)
        previous = self.restartDelay.get(index, 0.0)
        if lived >= STABLE_AFTER or previous == 0.0:
            delay = FIRST_RESTART_DELAY
        else:
            delay = min(previous * 2, MAX_RESTART_DELAY)
        self.restartDelay[index] = delay
        return delay

    def stopService(self) -> Deferred[None]:
        super().stopService()
        for call in self.pendingRestarts.values():
            call.cancel()
        self.pendingRestarts.clear()
        workers = list(self.workers.values())
        log.info("Stopping {count} workers", count=len(workers))
        for worker in workers:
            worker.transport.signalProcess("TERM")
        killer = self.reactor.callLater(
            self.settings.drainTimeout + KILL_GRACE, self.killRemaining
        )
        stopped = DeferredList([worker.ended for worker in workers])
        stopped.addCallback(lambda _: killer.active() and killer.cancel())
        stopped.addCallback(lambda _: None)
        return stopped

    def killRemaining(self) -> None:
        for worker in list(self.workers.values()):
            log.warn(
                "Worker {index} did not stop in time; killing it", index=worker.index
            )
            worker.transport.signalProcess("KILL")


def describeEnd(reason: Failure) -> str:
    """
    Describe how a process ended: its exit status or the signal.
    """
    if reason.check(ProcessDone):
        return "exited with status 0"
    value = reason.value
    if getattr(value, "signal", None):
        return f"was killed by signal {value.signal}"
    return f"exited with status {getattr(value, 'exitCode', '?')}"
