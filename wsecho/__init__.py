"""
wsecho: a WebSocket echo service for Twisted, run as C{twistd -n wsecho}.
"""

__version__ = "0.1.0"
