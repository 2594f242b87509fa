"""
The browser page served at C{/}.
"""

from importlib.resources import files

from twisted.web.resource import Resource
from twisted.web.server import Request

from wsecho.responses import respond


class BrowserPage(Resource):
    """
    The self-contained HTML page for trying the WebSocket from a browser.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.body = files("wsecho").joinpath("static/index.html").read_bytes()

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        return respond(request, self.body)

    render_HEAD = render_GET
