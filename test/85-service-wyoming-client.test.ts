// The device socket driven by an independent client: the reference Wyoming library (Debian 13's
// python3-wyoming 1.6.2, fetched by scripts/wyoming-client.sh), not this repository's framing.
// The runtime is the release bundle (`run --socket`) against the auth and CIC emulators.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AuthEmulator } from './emulator/auth-server';
import { startCicEmulator, type CicEmulator } from './emulator/cic-server';
import { testPki } from './support/certs';
import { buildBundle, pairedEnv, root, RuntimeProcess } from './support/runtime-process';

const pki = testPki();
let auth: AuthEmulator;
let cic: CicEmulator;
let env: NodeJS.ProcessEnv;
let dir: string;
let pythonPath: string;

function run(cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...extraEnv }, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as NodeJS.ErrnoException & { code?: number }).code as unknown as number) ?? 1 : 0, stdout, stderr });
    });
  });
}

test.before(async () => {
  const fetched = await run('bash', [join(root, 'scripts', 'wyoming-client.sh')]);
  assert.is(fetched.code, 0, `scripts/wyoming-client.sh failed: ${fetched.stderr}`);
  pythonPath = fetched.stdout.trim();
  await buildBundle();
  auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
  await auth.start();
  cic = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, validateToken: (t) => auth.isValidAccessToken(t) });
  ({ env, dir } = await pairedEnv({ auth, cic, caPath: pki.caPath }, 'wyoming-device'));
});

test.after(async () => {
  await cic.stop();
  await auth.stop();
});

test('python3-wyoming: describe, ping, status, subscribe, a live-audio event with StopCapture, the answer streamed back', async () => {
  const sock = join(dir, 'cic.sock');
  const rt = new RuntimeProcess({ ...env, CIC_SOCKET: sock });
  try {
    await rt.state('ready');
    assert.ok(existsSync(sock));
    const py = await run('python3', [join(root, 'test', 'support', 'wyoming-session.py'), sock], { PYTHONPATH: pythonPath });
    assert.is(py.code, 0, `the python client failed: ${py.stderr}`);
    const s = JSON.parse(py.stdout.trim().split('\n').pop()!);
    assert.equal(Object.keys(s.info), ['name', 'version', 'nghttp2', 'node', 'target']);
    assert.is(s.info.name, 'cic-runtime');
    assert.match(s.info.nghttp2, /^1\.64\./);
    assert.is(s.pong, 'hello wyoming');
    assert.is(s.status.state, 'ready');
    assert.is(s.status.deviceId, 'wyoming-device');
    assert.is(s.state, 'ready');
    assert.equal(s.directives, ['StopCapture', 'Speak']);
    assert.equal(s.directiveSources, ['downchannel', 'event']);
    assert.is(s.eventSent.id, 'wyoming-1');
    assert.is(s.eventSent.status, 200);
    assert.is(s.attachmentEnd.bytes, 4096);
    assert.is(s.attachmentBytes, 4096);
    assert.ok(s.attachmentChunks >= 1);
    assert.equal(s.attachmentContentIds, [s.attachmentEnd.contentId]);
    assert.equal(s.attachmentFirstBytes, [0, 1, 2, 3, 4, 5, 6, 7], 'the emulator\'s fake speech, byte for byte');
    const ev = cic.events.find((e) => e.messageId === s.eventSent.messageId)!;
    assert.is(ev.audioBytes, 6400, 'the chunks after StopCapture never reached CIC');
    assert.ok(ev.stopCaptureSent);
  } finally {
    rt.child.kill('SIGTERM');
  }
  assert.is(await rt.exit, 0);
  assert.not.ok(existsSync(sock), 'the socket file is removed on a clean exit');
});

test.run();
