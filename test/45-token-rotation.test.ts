// A device's weeks in a few seconds: seconds-long access tokens from an auth server that
// rotates (a refresh ends the grant's older access tokens), and a CIC that asks the auth
// server whether each bearer token is still alive. After every proactive refresh the next
// voice event, text event and `GET /ping` must carry the new token: a request sent with a
// token the runtime already knew to be replaced would be refused, and a live voice request
// refused with 401 cannot be sent again.
//
// One FakeClock drives token lifetimes (auth emulator), the refresh timer (TokenManager) and
// the keepalive (CicClient); TLS, HTTP/2 and the token file are real.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClovaAuthClient } from '../src/auth/clova-auth';
import { TokenManager, type RefreshedInfo } from '../src/auth/token-manager';
import { TokenStore } from '../src/auth/token-store';
import { CicClient } from '../src/cic/client';
import { readDirectives } from '../src/cic/directive-reader';
import type { CicError } from '../src/errors';
import { AuthEmulator } from './emulator/auth-server';
import { startCicEmulator } from './emulator/cic-server';
import { testPki } from './support/certs';
import { FakeClock } from './support/fake-clock';

const pki = testPki();
const DEVICE = 'device-45-rotation';
const UA = 'Test/Rotation/1.0.0 (Linux 6.1;test-hw)';
const TOKEN_TTL_S = 30; // a "week" of token life
const REFRESH_MARGIN_MS = 10_000; // proactive refresh 20 s into each token's life
const PING_INTERVAL_MS = 7_000;
const CYCLES = 5;

/** Bounded wait for a condition produced by real I/O (a failure guard, not a delay). */
async function until(pred: () => boolean, what: string, rounds = 2500): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (pred()) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('after each proactive refresh on a rotating server: voice event, text event and GET /ping carry the new token', async () => {
  const clock = new FakeClock();
  const dir = mkdtempSync(join(tmpdir(), 'cic-45-'));
  const auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, clock, accessTtlS: TOKEN_TTL_S, revokeReplacedAccessTokens: true });
  await auth.start();
  const cic = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, validateToken: (t) => auth.isValidAccessToken(t) });
  const tm = new TokenManager({
    auth: new ClovaAuthClient({ authUrl: auth.url, clientId: auth.clientId, clientSecret: auth.clientSecret, deviceId: DEVICE, caPem: pki.ca, clock }),
    store: new TokenStore({ path: join(dir, 'token.json') }),
    clock,
    deviceId: DEVICE,
    refreshMarginMs: REFRESH_MARGIN_MS,
    minValidityMs: 2_000,
  });
  const client = new CicClient({
    url: `https://127.0.0.1:${cic.port}`,
    userAgent: UA,
    tokens: tm,
    readDirectives,
    ca: pki.ca,
    caMode: 'only',
    clock,
    pingMode: 'http',
    pingIntervalMs: PING_INTERVAL_MS,
    // Longer than any stretch of fake time the test lets pass while a GET /ping may be on the
    // wire: the clock jumps a second at a time, the answer comes over real loopback.
    pingTimeoutMs: 120_000,
  });
  const refreshed: RefreshedInfo[] = [];
  tm.on('refreshed', (info) => refreshed.push(info));
  const problems: CicError[] = [];
  client.on('problem', (e) => problems.push(e));
  let pings = 0;
  client.on('ping', () => pings++);
  // Fake time moves only while no real exchange is under way: a refresh in flight, or a
  // GET /ping the server has seen but whose answer the client has not reported yet.
  const settle = (what: string) =>
    until(() => tm.state !== 'refreshing' && cic.requests.filter((r) => r.path === '/ping').length === pings, `${what}: exchanges to settle`);
  try {
    await tm.login(auth.addAccount());
    client.start();
    await client.ready();

    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      // Time passes a second at a time until the refresh timer has fired and the new tokens
      // are saved (real TLS to the auth emulator in between).
      for (let s = 0; s < TOKEN_TTL_S && refreshed.length < cycle; s++) {
        clock.advance(1_000);
        await settle(`cycle ${cycle}`);
      }
      await until(() => refreshed.length === cycle, `cycle ${cycle}: a proactive refresh`);
      assert.is(refreshed[cycle - 1]!.reason, 'proactive');
      const current = await tm.getAccessToken();
      const from = cic.requests.length;

      async function* mic() {
        yield Buffer.alloc(3200, cycle);
        yield Buffer.alloc(3200, cycle + 1);
      }
      const voice = await client.sendEvent({
        namespace: 'SpeechRecognizer',
        name: 'Recognize',
        payload: { profile: 'CLOSE_TALK', format: 'AUDIO_L16_RATE_16000_CHANNELS_1' },
        dialogRequestId: randomUUID(),
        audio: mic(),
      });
      assert.is(voice.status, 200, `cycle ${cycle}: the voice event`);
      const text = await client.sendEvent({ namespace: 'TextRecognizer', name: 'Recognize', payload: { text: `cycle ${cycle}` }, dialogRequestId: randomUUID() });
      assert.ok(text.status === 200 || text.status === 204, `cycle ${cycle}: the text event`);
      const before = pings;
      for (let s = 0; s < PING_INTERVAL_MS / 1_000 && pings === before; s++) {
        clock.advance(1_000);
        await settle(`cycle ${cycle}`);
      }
      await until(() => pings > before, `cycle ${cycle}: an http ping`);

      const since = cic.requests.slice(from);
      assert.equal(since.map((r) => r.path), ['/v1/events', '/v1/events', '/ping'], `cycle ${cycle}: the requests after the refresh`);
      for (const r of since) assert.ok(r.token === current, `cycle ${cycle}: ${r.path} carried the newest token`);
    }

    assert.is(cic.counters.unauthorized, 0, 'CIC refused no request');
    // CIC asked the auth server about each token as the request arrived.
    assert.equal(cic.requests.filter((r) => !r.accepted).length, 0, 'no request carried a replaced token');
    assert.ok(auth.replacedAccessTokens.size >= CYCLES, 'the auth server really replaced tokens');
    assert.equal(problems, []);
    assert.is(client.state, 'ready');
  } finally {
    await client.stop();
    await tm.close();
    await cic.stop();
    await auth.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
