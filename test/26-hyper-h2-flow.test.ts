// Manual inbound flow control against hyper-h2 (Debian's python3-h2), an HTTP/2 implementation
// that is not nghttp2: a stream whose bytes are held (not consumed) stops the server exactly at
// the stream window the client announced, with no WINDOW_UPDATE for that stream; once the bytes
// are given back the server sends the rest, and the body arrives whole. The emulator tests run
// node:http2, which is nghttp2 inside: a flow-control mistake shared by both ends would pass
// there.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Connection } from '../src/h2/connection';
import { testPki } from './support/certs';

const pki = testPki();
const TOTAL = 2 * 1024 * 1024;
// Debian's interpreter: python3-h2 is installed for it (a python3 earlier on PATH may lack it).
const PYTHON = '/usr/bin/python3';
const root = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..');

type Line = Record<string, number | string>;

function startServer(): { child: ChildProcessWithoutNullStreams; lines: Line[]; next(pred: (l: Line) => boolean, what: string): Promise<Line> } {
  const child = spawn(PYTHON, [join(root, 'test', 'support', 'h2-flow-server.py'), pki.server.certPath, pki.server.keyPath, String(TOTAL)]);
  const lines: Line[] = [];
  let buf = '';
  let err = '';
  child.stdout.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, i)) as Line);
      buf = buf.slice(i + 1);
    }
  });
  child.stderr.on('data', (d) => (err += d));
  return {
    child,
    lines,
    async next(pred, what) {
      for (let i = 0; i < 5000; i++) {
        const hit = lines.find(pred);
        if (hit) return hit;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 2));
      }
      throw new Error(`hyper-h2 server: no ${what}; stderr: ${err.slice(-2000)}`);
    },
  };
}

test('a held stream stops hyper-h2 at the announced window; consuming releases the rest, whole', async () => {
  const server = startServer();
  try {
    const { port, sha256 } = await server.next((l) => 'port' in l, 'port line');
    const conn = await Connection.connect({ host: '127.0.0.1', port: Number(port), ca: pki.ca, caMode: 'only' });
    const stream = conn.request({ path: '/big' });
    stream.once('response', () => stream.holdWindow());
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
    const finished = stream.finished();

    const stall = await server.next((l) => 'stalled' in l, 'stall while the client holds its window');
    const sid = Number(stall.stalled);
    const received = () => chunks.reduce((n, c) => n + c.length, 0);
    for (let i = 0; i < 2500 && received() < Number(stall.sent); i++) await new Promise((r) => setTimeout(r, 2));
    assert.is(received(), Number(stall.sent), 'everything the server sent has arrived');
    assert.is(stream.heldBytes, received(), 'and is held, not given back');
    assert.ok(Number(stall.sent) > 0 && Number(stall.sent) < TOTAL, `stalled part-way (${stall.sent} bytes)`);
    // A PING round trip: the client had every chance to send a WINDOW_UPDATE; it sent none for
    // the held stream.
    await conn.ping(5000);
    assert.equal(server.lines.filter((l) => l.windowUpdate === sid), [], 'no WINDOW_UPDATE for a held stream');

    stream.consume(stream.heldBytes);
    stream.on('data', (c: Buffer) => stream.consume(c.length));
    await finished;
    const body = Buffer.concat(chunks);
    assert.is(body.length, TOTAL);
    assert.is(createHash('sha256').update(body).digest('hex'), sha256);
    // The server reports in order on one pipe: its `done` line comes after every WINDOW_UPDATE
    // that let it finish, but the pipe may lag behind the TLS socket.
    await server.next((l) => l.done === sid, 'done line');
    const given = server.lines.filter((l) => l.windowUpdate === sid).reduce((n, l) => n + Number(l.delta), 0);
    assert.ok(given >= TOTAL - Number(stall.sent), `the stream's window was reopened by what was consumed (${given} bytes)`);
    console.log(`hyper-h2 stopped at ${stall.sent} bytes while held (the stream window), then sent the rest after ${server.lines.filter((l) => l.windowUpdate === sid).length} WINDOW_UPDATEs`);
    await conn.close();
  } finally {
    server.child.kill();
  }
});

test.run();
