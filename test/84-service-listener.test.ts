// `run --socket PATH` as a device runs it (the release bundle in its own process): the socket
// is 0660, a stale one left by a crash is replaced, one held by a live process and a path that
// is not a socket are configuration errors (exit 2, nothing touched), the file is removed on a
// clean exit, and the stdin/stdout contract keeps working beside the socket. Without a token
// `run --socket` waits for a login instead of exiting 3; without a socket it still exits 3.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { AuthEmulator } from './emulator/auth-server';
import { startCicEmulator, type CicEmulator } from './emulator/cic-server';
import { testPki } from './support/certs';
import { buildBundle, pairedEnv, runBundle, RuntimeProcess } from './support/runtime-process';
import { SocketClient } from './support/socket-client';

const pki = testPki();
let auth: AuthEmulator;
let cic: CicEmulator;
let env: NodeJS.ProcessEnv;
let dir: string;

test.before(async () => {
  await buildBundle();
  auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
  await auth.start();
  cic = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, validateToken: (t) => auth.isValidAccessToken(t) });
  ({ env, dir } = await pairedEnv({ auth, cic, caPath: pki.caPath }, 'listener-device'));
});

test.after(async () => {
  await cic.stop();
  await auth.stop();
});

const lastError = (stderr: string) => stderr.trim().split('\n').map((l) => JSON.parse(l)).filter((j) => j.level === 'error').pop();

test('mode 0660, the socket beside stdin/stdout, removed on a clean exit', async () => {
  const sock = join(dir, 'a.sock');
  const rt = new RuntimeProcess({ ...env, CIC_SOCKET: sock });
  try {
    await rt.state('ready');
    const st = statSync(sock);
    assert.ok(st.isSocket());
    assert.is(st.mode & 0o777, 0o660);
    const c = await SocketClient.connect(sock);
    assert.is((await c.ask('status', undefined, 'status')).data.state, 'ready');
    // stdin → event → stdout, unchanged by the socket.
    rt.send({ namespace: 'System', name: 'SynchronizeState', payload: {} });
    const sent = await rt.waitFor('out', (j) => j.eventSent, 'eventSent');
    assert.is(sent.json.eventSent.status, 204);
    c.destroy();
  } finally {
    rt.child.kill('SIGTERM');
  }
  assert.is(await rt.exit, 0);
  assert.not.ok(existsSync(sock), 'removed');
});

test('a stale socket left by a crash is replaced', async () => {
  const sock = join(dir, 'stale.sock');
  // A process that binds the path and dies without cleaning up, as a crash would.
  await new Promise<void>((resolve) => {
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    child.on('exit', () => resolve());
  });
  assert.ok(statSync(sock).isSocket(), 'a stale socket file is there');
  const rt = new RuntimeProcess({ ...env, CIC_SOCKET: sock });
  try {
    await rt.waitFor('err', (j) => j.msg === 'stale device socket replaced', 'the stale socket replaced');
    await rt.state('ready');
    const c = await SocketClient.connect(sock);
    assert.is((await c.ask('ping', { text: 'new' }, 'pong')).data.text, 'new');
    c.destroy();
  } finally {
    rt.child.kill('SIGTERM');
  }
  assert.is(await rt.exit, 0);
});

test('a socket a live process holds: exit 2 SOCKET_PATH_IN_USE, that process keeps its socket', async () => {
  const sock = join(dir, 'live.sock');
  const server: Server = createServer((s) => {
    s.on('error', () => {}); // the runtime's probe hangs up at once
    s.end('still mine\n');
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const r = await runBundle(['run', '--socket', sock], env);
    assert.is(r.code, 2, r.stderr);
    assert.is(lastError(r.stderr).code, 'SOCKET_PATH_IN_USE');
    assert.match(lastError(r.stderr).msg, /in use/);
    assert.is(r.stdout, '');
    const got = await new Promise<string>((resolve) => {
      const c = connect(sock);
      let text = '';
      c.on('data', (d: Buffer) => (text += d));
      c.on('end', () => resolve(text));
    });
    assert.is(got, 'still mine\n');
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test('a path that is not a socket: exit 2 SOCKET_PATH_INVALID, left untouched (file, directory, missing directory)', async () => {
  const file = join(dir, 'not-a-socket');
  writeFileSync(file, 'precious');
  let r = await runBundle(['run', '--socket', file], env);
  assert.is(r.code, 2, r.stderr);
  assert.is(lastError(r.stderr).code, 'SOCKET_PATH_INVALID');
  assert.match(lastError(r.stderr).msg, /not-a-socket exists and is a regular file; it was left untouched/);
  assert.is(readFileSync(file, 'utf8'), 'precious');
  const sub = join(dir, 'a-directory');
  mkdirSync(sub);
  r = await runBundle(['run'], { ...env, CIC_SOCKET: sub });
  assert.is(r.code, 2);
  assert.is(lastError(r.stderr).code, 'SOCKET_PATH_INVALID');
  assert.ok(statSync(sub).isDirectory());
  r = await runBundle(['run', '--socket', join(dir, 'no-such-dir', 'cic.sock')], env);
  assert.is(r.code, 2);
  assert.match(lastError(r.stderr).msg, /RuntimeDirectory/);
});

test('no token: without a socket exit 3 as before; with one, waiting-for-login on the socket', async () => {
  const noToken = { ...env, CIC_TOKEN_FILE: join(dir, 'none', 'token') };
  const r = await runBundle(['run'], noToken);
  assert.is(r.code, 3);
  assert.is(lastError(r.stderr).code, 'AUTH_NOT_LOGGED_IN');
  const sock = join(dir, 'wait.sock');
  const rt = new RuntimeProcess({ ...noToken, CIC_SOCKET: sock });
  try {
    const waiting = await rt.waitFor('out', (j) => j.state?.state === 'waiting-for-login', 'the waiting-for-login line');
    assert.is(waiting.json.state.loggedIn, false);
    const c = await SocketClient.connect(sock);
    assert.is((await c.ask('status', undefined, 'status')).data.state, 'waiting-for-login');
    const account = auth.addAccount();
    assert.is((await c.ask('login', { accountToken: account }, 'logged-in')).data.deviceId, 'listener-device');
    await rt.state('ready');
    await rt.waitFor('out', (j) => j.directive?.header?.name === 'Hello', 'Hello after the login');
    c.destroy();
  } finally {
    rt.child.kill('SIGTERM');
  }
  assert.is(await rt.exit, 0);
});

test.run();
