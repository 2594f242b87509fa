"""
Tests for the twistd plugin declaration.
"""

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase

import wsecho.tap


class PluginTests(SynchronousTestCase):
    """
    twistd finds the plugin.
    """

    def test_pluginFound(self):
        """
        C{getPlugins(IServiceMaker)} yields the C{wsecho} service maker.
        """
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("wsecho", makers)
        maker = makers["wsecho"]
        self.assertIs(maker.options, wsecho.tap.Options)
        self.assertIs(maker.makeService, wsecho.tap.makeService)
