// `cic-runtime run` from the bundle when CIC keeps answering 401: a device whose grant is alive
// must never exit (it backs off, warns and keeps refreshing, so the README's unit never has to
// restart it, and a unit that would not restart it cannot brick it). Only a dead grant (the
// auth server's invalid_grant) ends the process, with exit code 3 and AUTH_INVALID_GRANT.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AuthEmulator } from './emulator/auth-server';
import { testPki } from './support/certs';
import { buildBundle, pairedEnv, RuntimeProcess } from './support/runtime-process';
import { startCicEmulator, type CicEmulator } from './emulator/cic-server';

const pki = testPki();

let auth: AuthEmulator;
let cic: CicEmulator;
let env: NodeJS.ProcessEnv;

test.before(async () => {
  await buildBundle();
  auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
  await auth.start();
  cic = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, validateToken: (t) => auth.isValidAccessToken(t) });
  ({ env } = await pairedEnv({ auth, cic, caPath: pki.caPath }, 'run-401-device'));
});

test.after(async () => {
  await cic.stop();
  await auth.stop();
});

test('run: 401 after 401 with a live grant keeps the process up; a dead grant exits 3 with AUTH_INVALID_GRANT', async () => {
  const rt = new RuntimeProcess(env);
  try {
    await rt.state('ready');
    // Every token is refused from now on, fresh ones too; then the connection is dropped so
    // that the next downchannel has to present one.
    cic.expireTokens('all');
    const mark = rt.err.length;
    cic.dropSocket();
    // First 401: refresh and retry at once. Second: the warning, then the 401 backoff.
    const warning = await rt.waitFor('err', (j) => j.msg === 'cic problem' && j.code === 'CIC_UNAUTHORIZED', 'the CIC_UNAUTHORIZED warning', mark, 30_000);
    const retry = await rt.waitFor('err', (j) => j.msg === 'cic attempt failed' && j.code === 'CIC_UNAUTHORIZED', 'the backed-off retry', mark, 30_000);
    assert.ok(retry.json.retryInMs >= 1_000, `a backoff delay, not a tight loop (${retry.json.retryInMs} ms)`);
    // A third 401 after the delay: still refreshing, still running.
    const refreshesBefore = auth.requests.filter((r) => r.key === 'token:refresh_token').length;
    await rt.waitFor('err', (j) => j.msg === 'cic problem' && j.code === 'CIC_UNAUTHORIZED', 'a later warning', rt.err.indexOf(warning) + 1, 30_000);
    assert.ok(auth.requests.filter((r) => r.key === 'token:refresh_token').length > refreshesBefore, 'refreshed again after the delay');
    assert.is(rt.child.exitCode, null, 'the process is still running');
    assert.not.ok(rt.err.some((l) => l.json.msg === 'cic client closed'), 'the client never closed');

    // CIC accepts tokens again: back to ready without a restart.
    const restoredAt = Date.now();
    cic.restoreTokens();
    const ready = await rt.state('ready', mark);

    // Now the grant dies at the auth server: the next 401's refresh gets invalid_grant.
    const revokedAt = Date.now();
    auth.revokeAll();
    cic.expireTokens('all');
    cic.dropSocket();
    let guard: NodeJS.Timeout | undefined;
    const code = await Promise.race([rt.exit, new Promise<string>((r) => (guard = setTimeout(() => r('still running'), 60_000)))]);
    clearTimeout(guard);
    assert.is(code, 3, 'exit code 3: pair again');
    console.log(`401 warnings while the grant lived: ${rt.err.filter((l) => l.json.msg === 'cic problem').length}; ready ${ready.at - restoredAt} ms after CIC accepted again; exit ${Date.now() - revokedAt} ms after the grant died`);
    assert.ok(rt.err.some((l) => l.json.msg === 'cic client closed' && l.json.code === 'AUTH_INVALID_GRANT'), 'closed with AUTH_INVALID_GRANT');
  } finally {
    if (rt.child.exitCode === null) rt.child.kill('SIGKILL');
    await rt.exit;
    cic.restoreTokens();
  }
});

test.run();
