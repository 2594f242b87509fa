"""
The browser page served at C{/}.
"""

from html import escape
from importlib.resources import files

from twisted.web.resource import Resource
from twisted.web.server import Request

from wsecho.responses import respond

PATH_TAG = '<meta name="websocket-path" content="/ws">'


class BrowserPage(Resource):
    """
    The self-contained HTML page for trying the WebSocket from a browser.

    The page reads the WebSocket's path from a C{meta} tag, which is set to
    the server's path here.
    """

    isLeaf = True

    def __init__(self, path: str = "/ws") -> None:
        super().__init__()
        page = files("wsecho").joinpath("static/index.html").read_text("utf-8")
        tag = f'<meta name="websocket-path" content="{escape(path, quote=True)}">'
        self.body = page.replace(PATH_TAG, tag, 1).encode("utf-8")

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        return respond(request, self.body)

    render_HEAD = render_GET
