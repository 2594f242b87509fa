// WebSocket echo server on Node's ws library, a peer of the wsecho benchmark.
//
// Usage: node ws_echo.js PORT
//
// Listens on 127.0.0.1:PORT, accepts any path, and sends every message back
// with the type it arrived with. Compression is off and a message may be up
// to 16 MiB, the same settings as the Python peers. It exits with status 1
// when the bufferutil or utf-8-validate add-on cannot be loaded, because ws
// then falls back to JavaScript masking and validation silently.

'use strict';

const MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

function loadAddOn(name) {
  try {
    return require(name);
  } catch (error) {
    console.error(
      `ws_echo.js: cannot load the native add-on ${name} (${error.message}); ` +
        'run npm ci in benchmarks/peers'
    );
    process.exit(1);
  }
}

loadAddOn('bufferutil');
loadAddOn('utf-8-validate');

const { WebSocketServer } = require('ws');

const port = Number.parseInt(process.argv[2], 10);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`ws_echo.js: invalid port ${process.argv[2]}; usage: node ws_echo.js PORT`);
  process.exit(2);
}

const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  maxPayload: MAX_MESSAGE_SIZE,
  perMessageDeflate: false,
  clientTracking: false,
});

server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => {
    socket.send(data, { binary: isBinary });
  });
  socket.on('error', () => socket.terminate());
});

server.on('listening', () => {
  const version = require('ws/package.json').version;
  console.log(`ws ${version} echo server listening on 127.0.0.1:${port}`);
});

server.on('error', (error) => {
  console.error(`ws_echo.js: ${error.message}`);
  process.exit(1);
});

process.on('SIGTERM', () => process.exit(0));
