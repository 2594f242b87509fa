"""
Tests for L{wsecho.acceleration}.
"""

from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from wsecho.acceleration import logAcceleration


class AccelerationTests(SynchronousTestCase):
    """
    The start-up log shows whether NVX is active.
    """

    def test_active(self):
        """
        Active NVX is logged at info level.
        """
        with capturedLogs() as events:
            self.assertTrue(logAcceleration(True))
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.info)
        self.assertIs(event["nvx"], True)

    def test_missing(self):
        """
        Missing NVX is a warning with the way to get it.
        """
        with capturedLogs() as events:
            self.assertFalse(logAcceleration(False))
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertIn("is not active", formatEvent(event))
        self.assertIn("AUTOBAHN_USE_NVX", formatEvent(event))

    def test_installedPackage(self):
        """
        The installed Autobahn reports NVX as active on this platform.
        """
        with capturedLogs():
            self.assertTrue(logAcceleration())
