// Benchmark peer: a node:http2 TLS server on loopback that answers POST /v1/events with 204
// after reading the body, and GET /hello with a small body. Prints its port on stdout.
//   node scripts/bench/h2-server.mjs KEY CERT
import * as http2 from 'node:http2';
import { readFileSync } from 'node:fs';

const [key, cert] = process.argv.slice(2);
const server = http2.createSecureServer({ key: readFileSync(key), cert: readFileSync(cert), settings: { maxConcurrentStreams: 1000 } });
server.on('stream', (stream, headers) => {
  stream.on('error', () => {});
  if (headers[':method'] === 'POST') {
    stream.on('data', () => {});
    stream.on('end', () => {
      stream.respond({ ':status': 204 });
      stream.end();
    });
    return;
  }
  stream.respond({ ':status': 200 });
  stream.end('hello');
});
server.on('sessionError', () => {});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
