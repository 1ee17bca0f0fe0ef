// The whole device path over IPv6: the auth and CIC emulators listen on ::1 only, and the
// bundle logs in and runs with bracketed URLs (https://[::1]:port). Covers URL validation,
// the auth client over node:https, the addon's TCP/TLS connect to an IPv6 literal (no SNI for
// an address; the certificate's IP:::1 SAN verified), the :authority header and a reconnect.
//
// A machine without IPv6 loopback skips the case with the reason printed (never counted as
// passed); under CI=true it fails (test/support/capability.ts).
import { test } from 'uvu';
import { capabilityCase } from './support/capability';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuthEmulator } from './emulator/auth-server';
import { directive, startCicEmulator } from './emulator/cic-server';
import { testPki } from './support/certs';
import { buildBundle, runBundle, RuntimeProcess } from './support/runtime-process';

const pki = testPki();

/** Why ::1 cannot be used here, or undefined when it can (IPv6 off: no ::1 on any interface). */
function ipv6LoopbackUnavailable(): string | undefined {
  const addresses = Object.values(networkInterfaces()).flat();
  return addresses.some((a) => a?.address === '::1') ? undefined : 'no interface holds ::1 (IPv6 is disabled)';
}

const NAME = 'login and run over [::1]: ready, an event answered, a directive pushed, a dropped socket replaced, SIGTERM exits 0';

async function ipv6Case(): Promise<void> {
  await buildBundle();
  const auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca, host: '::1' });
  await auth.start();
  const cic = await startCicEmulator({ host: '::1', validateToken: (t) => auth.isValidAccessToken(t) });
  try {
    assert.match(auth.url, /^https:\/\/\[::1\]:\d+\//);
    assert.match(cic.url, /^https:\/\/\[::1\]:\d+$/);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      CIC_AUTH_URL: auth.url,
      CIC_URL: cic.url,
      CIC_CLIENT_ID: auth.clientId,
      CIC_CLIENT_SECRET: auth.clientSecret,
      CIC_DEVICE_ID: 'ipv6-device',
      CIC_USER_AGENT: 'Test/Runtime/1.0.0 (Linux;ci)',
      CIC_TOKEN_FILE: join(mkdtempSync(join(tmpdir(), 'cic-v6-')), 'token'),
      CIC_CA_FILE: pki.caPath,
      CIC_LOG_LEVEL: 'info',
    };
    const login = await runBundle(['login', '--account-token', auth.addAccount()], env);
    assert.is(login.code, 0, login.stderr);

    const rt = new RuntimeProcess(env);
    try {
      await rt.state('ready');
      const [conn] = [...cic.connections.values()];
      assert.ok(conn && conn.socket.remoteAddress === '::1', `the runtime came from ${conn?.socket.remoteAddress}`);

      rt.send({ namespace: 'TextRecognizer', name: 'Recognize', payload: { text: 'hi' }, dialogRequestId: 'd-v6' });
      const sent = await rt.waitFor('out', (j) => j.eventSent?.name === 'Recognize', 'eventSent');
      assert.is(sent.json.eventSent.status, 200);
      await rt.waitFor('out', (j) => j.directive?.header?.name === 'Speak', 'Speak directive');

      cic.pushDirective(directive('Settings', 'Update', { volume: 3 }));
      const d = await rt.waitFor('out', (j) => j.directive?.header?.name === 'Update', 'pushed directive');
      assert.equal(d.json.directive.payload, { volume: 3 });

      const mark = rt.err.length;
      assert.ok(cic.dropSocket() >= 1, 'a socket was dropped');
      await rt.state('reconnecting', mark);
      await rt.state('ready', mark);
    } finally {
      rt.child.kill('SIGTERM');
    }
    assert.is(await rt.exit, 0, 'SIGTERM ends with exit 0');
  } finally {
    await cic.stop();
    await auth.stop();
  }
}

capabilityCase(NAME, ipv6LoopbackUnavailable(), ipv6Case);

test.run();
