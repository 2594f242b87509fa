"""
Tests for L{wsecho.workers}, with a reactor that records processes instead
of starting them.
"""

import json
import socket

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from wsecho.listening import SocketListener
from wsecho.settings import Settings
from wsecho.workers import WorkerPool


class FakeProcess:
    def __init__(self, pid):
        self.pid = pid
        self.signals = []

    def signalProcess(self, name):
        self.signals.append(name)


class ProcessReactor(MemoryReactorClock):
    def __init__(self):
        super().__init__()
        self.spawned = []

    def spawnProcess(self, protocol, executable, args, env=None, childFDs=None):
        process = FakeProcess(1000 + len(self.spawned))
        protocol.makeConnection(process)
        self.spawned.append((protocol, args, childFDs))
        return process


class WorkerPoolTests(SynchronousTestCase):
    """
    The pool starts, restarts and stops its workers.
    """

    def setUp(self):
        self.socket = socket.socket()
        self.addCleanup(self.socket.close)
        self.reactor = ProcessReactor()
        self.pool = WorkerPool(
            SocketListener(self.socket, "tcp:0"),
            Settings(workers=2, drainTimeout=5),
            self.reactor,
        )
        with capturedLogs():
            self.pool.startService()

    def end(self, index, reason):
        protocol = self.pool.workers[index]
        protocol.processEnded(Failure(reason))

    def test_startsWorkers(self):
        """
        Each worker gets the socket's descriptor and the settings.
        """
        fd = self.socket.fileno()
        self.assertEqual(len(self.reactor.spawned), 2)
        for _, args, childFDs in self.reactor.spawned:
            self.assertEqual(childFDs[fd], fd)
            self.assertEqual(args[1:5], ["-m", "wsecho.worker", "--fd", str(fd)])
            settings = json.loads(args[6])
            self.assertEqual(settings["drainTimeout"], 5)

    def test_restartsDeadWorker(self):
        """
        A worker that dies is started again after a second, and one that
        keeps dying young waits longer each time.
        """
        with capturedLogs() as events:
            self.end(0, ProcessTerminated(exitCode=None, signal=9))
            self.reactor.advance(1)
            self.assertEqual(len(self.reactor.spawned), 3)
            self.end(0, ProcessTerminated(exitCode=1))
            self.reactor.advance(1)
            self.assertEqual(len(self.reactor.spawned), 3)
            self.reactor.advance(1)
            self.assertEqual(len(self.reactor.spawned), 4)
        lines = [formatEvent(event) for event in events]
        self.assertIn("Worker 0 was killed by signal 9; restarting it in 1.0 s", lines)
        self.assertIn("Worker 0 exited with status 1; restarting it in 2.0 s", lines)

    def test_stopSignalsWorkers(self):
        """
        Stopping sends SIGTERM to every worker and completes when all ended.
        """
        with capturedLogs():
            stopping = self.pool.stopService()
        processes = [protocol.transport for protocol in self.pool.workers.values()]
        self.assertEqual(
            [process.signals for process in processes], [["TERM"], ["TERM"]]
        )
        self.end(0, ProcessDone(0))
        self.assertNoResult(stopping)
        self.end(1, ProcessDone(0))
        self.successResultOf(stopping)
        self.assertEqual(len(self.reactor.spawned), 2)

    def test_killAfterTimeout(self):
        """
        A worker still running past the drain timeout is killed.
        """
        with capturedLogs():
            stopping = self.pool.stopService()
            self.reactor.advance(10)
        for protocol in list(self.pool.workers.values()):
            self.assertEqual(protocol.transport.signals, ["TERM", "KILL"])
        self.end(0, ProcessTerminated(signal=9))
        self.end(1, ProcessTerminated(signal=9))
        self.successResultOf(stopping)
