"""
Response helpers shared by the resources.
"""

from twisted.web.server import Request


def respond(request: Request, body: bytes) -> bytes:
    """
    Return C{body} for a response, or for a C{HEAD} request an empty body
    with the C{Content-Length} the body would have had.
    """
    if request.method == b"HEAD":
        request.setHeader(b"content-length", b"%d" % len(body))
        return b""
    return body


def renderText(
    request: Request, code: int, text: str, message: bytes | None = None
) -> bytes:
    """
    Set a response code and a plain-text body.
    """
    request.setResponseCode(code, message)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return respond(request, text.encode("utf-8"))
