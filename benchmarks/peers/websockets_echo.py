"""
A WebSocket echo server on the websockets library's asyncio API, a peer of
the wsecho benchmark.

Usage: python websockets_echo.py PORT

It listens on 127.0.0.1:PORT with asyncio's default event loop, accepts any
path, and sends every message back with the type it arrived with. Two
options differ from the library's defaults so that all peers work alike:
compression is off (compression=None) and a message may be up to 16 MiB
(max_size). Keepalive pings keep their default of one every 20 seconds.
"""

import asyncio
import signal
import sys

import websockets
from websockets.asyncio.server import ServerConnection, serve

MAX_MESSAGE_SIZE = 16 * 1024 * 1024


async def echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


async def serveForever(port: int) -> None:
    async with serve(
        echo,
        "127.0.0.1",
        port,
        max_size=MAX_MESSAGE_SIZE,
        compression=None,
    ) as server:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, server.close)
        print(
            f"websockets {websockets.__version__} echo server listening on "
            f"127.0.0.1:{port}",
            flush=True,
        )
        await server.wait_closed()


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python websockets_echo.py PORT")
    asyncio.run(serveForever(int(sys.argv[1])))


if __name__ == "__main__":
    main()
