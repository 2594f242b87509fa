"""
Declare C{twistd wsecho}; the options and the service live in L{wsecho.tap}.
"""

from twisted.application.service import ServiceMaker

wsecho = ServiceMaker(
    "wsecho",
    "wsecho.tap",
    "A WebSocket echo server: each text message comes back as "
    "'You said: <message>', each binary message unchanged.",
    "wsecho",
)
