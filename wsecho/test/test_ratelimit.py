"""
Tests for L{wsecho.ratelimit}.
"""

from twisted.internet.task import Clock
from twisted.logger import Logger, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from wsecho.ratelimit import RateLimitedLog


class RateLimitedLogTests(SynchronousTestCase):
    """
    Repeated events give one line per interval.
    """

    def setUp(self):
        self.clock = Clock()
        self.log = RateLimitedLog(Logger(), "{count} events from {peer}", self.clock)

    def test_firstAtOnce(self):
        """
        The first event is logged at once.
        """
        with capturedLogs() as events:
            self.log.event(peer="a")
        self.assertEqual([formatEvent(e) for e in events], ["1 events from a"])

    def test_burstCounted(self):
        """
        Events within the interval are counted in one later line.
        """
        with capturedLogs() as events:
            for peer in "abcd":
                self.log.event(peer=peer)
                self.clock.advance(1)
            self.clock.advance(10)
        self.assertEqual(
            [formatEvent(e) for e in events], ["1 events from a", "3 events from d"]
        )

    def test_cancel(self):
        """
        A cancelled log drops its pending line.
        """
        with capturedLogs() as events:
            self.log.event(peer="a")
            self.log.event(peer="b")
            self.log.cancel()
            self.clock.advance(20)
        self.assertEqual(len(events), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])
