"""
Tests for L{wsecho.limits}.
"""

import resource

from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from wsecho import limits


class OpenFileLimitTests(SynchronousTestCase):
    """
    The soft limit is raised to the hard limit and checked against the
    connection limit.
    """

    def setUp(self):
        self.limit = (1024, 4096)
        self.patch(limits.resource, "getrlimit", lambda kind: self.limit)
        self.patch(limits.resource, "setrlimit", self.setLimit)

    def setLimit(self, kind, value):
        self.assertEqual(kind, resource.RLIMIT_NOFILE)
        self.limit = value

    def test_raised(self):
        """
        The soft limit becomes the hard limit.
        """
        with capturedLogs():
            self.assertEqual(limits.raiseOpenFileLimit(1000), 4096)
        self.assertEqual(self.limit, (4096, 4096))

    def test_warnsWhenLow(self):
        """
        A limit below the connection limit is a warning naming both.
        """
        with capturedLogs() as events:
            limits.raiseOpenFileLimit(10000)
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertIn("open-file limit of 4096 is too low", formatEvent(event))
        self.assertIn("--max-connections 10000", formatEvent(event))

    def test_enough(self):
        """
        A limit high enough is logged at info level.
        """
        with capturedLogs() as events:
            limits.raiseOpenFileLimit(100)
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertEqual(
            formatEvent(event),
            "Open-file limit: 4096, enough for --max-connections 100",
        )
