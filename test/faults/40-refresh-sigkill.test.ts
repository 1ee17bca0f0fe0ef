// Power loss during a token refresh: a real process runs TokenManager + TokenStore (file) +
// ClovaAuthClient (TLS to the auth emulator here, which rotates refresh tokens and kills the
// old one at once) and refreshes back to back; it is SIGKILLed at a random moment, 1,000
// times. After every kill the file must load (never empty, corrupt or "recovered"), hold an
// access token the server still accepts, and hold either the pair of the last acknowledged
// refresh or the pair of the refresh in flight. The next round is a fresh process that loads
// the store and refreshes with it:
//   - old pair, server had not rotated yet   → the refresh works;
//   - new pair (saved before the kill)       → the refresh works;
//   - old pair, server HAD rotated (killed between the server's answer and the durable
//     save — no client can close that window) → the runtime says AUTH_INVALID_GRANT, state
//     'dead', status().lastError AUTH_INVALID_GRANT, while the stored access token still
//     works at the server; that process then logs in again and its round goes on.
//
//   CIC_FAULT_REFRESH_ROUNDS (default 1000), CIC_FAULT_REFRESH_TIME_LIMIT_S (default 270),
//   CIC_FAULT_REFRESH_SEED, CIC_FAULT_REFRESH_MAX_DELAY_MS (default: 2.5 × the measured refresh time)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { TokenStore } from '../../src/auth/token-store';
import type { StoredTokens } from '../../src/auth/types';
import { AuthEmulator } from '../emulator/auth-server';
import { testPki } from '../support/certs';
import { fingerprint } from './40-refresh-child';
import { prng } from '../support/prng';

const ROUNDS = Number(process.env.CIC_FAULT_REFRESH_ROUNDS ?? 1000);
const TIME_LIMIT_MS = Number(process.env.CIC_FAULT_REFRESH_TIME_LIMIT_S ?? 270) * 1000;
const SEED = Number(process.env.CIC_FAULT_REFRESH_SEED ?? 0x40f17);
const CHILD = join(__dirname, '40-refresh-child.js');
const DEVICE = 'device-fault-40';

interface Line {
  t: string;
  [k: string]: unknown;
}

interface Round {
  lines: Line[];
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ms from 'go' to the kill, and the refreshes acknowledged after 'go'. */
  goAt: number | undefined;
}

function runRound(env: NodeJS.ProcessEnv, path: string, killDelayMs: number | undefined): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, path], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let stderr = '';
    const lines: Line[] = [];
    let timer: NodeJS.Timeout | undefined;
    let goAt: number | undefined;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const l = JSON.parse(buf.slice(0, nl)) as Line;
        buf = buf.slice(nl + 1);
        lines.push(l);
        if (l.t === 'go') {
          goAt = Date.now();
          if (killDelayMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), killDelayMs);
        }
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ lines, stderr, code, signal, goAt });
    });
  });
}

test('SIGKILL at random moments during refresh: the store always holds usable tokens; a lost rotation is reported', async () => {
  const pki = testPki();
  const emu = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, refreshGraceMs: 0 });
  await emu.start();
  const dir = await mkdtemp(join(tmpdir(), 'cic-fault-40-'));
  const path = join(dir, 'state', 'tokens.bin');
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, pki.ca);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CIC_FAULT_AUTH_URL: emu.url,
    CIC_FAULT_CLIENT_ID: emu.clientId,
    CIC_FAULT_CLIENT_SECRET: emu.clientSecret,
    CIC_FAULT_CA_FILE: caFile,
    CIC_FAULT_DEVICE: DEVICE,
    CIC_FAULT_ACCOUNT: emu.addAccount(),
  };
  delete env.NODE_EXTRA_CA_CERTS; // ~50 ms per Node start
  const store = new TokenStore({ path });
  const pair = async () => {
    const t = emu.issueTokens(DEVICE);
    const now = Date.now();
    const tokens: StoredTokens = { accessToken: t.access_token, refreshToken: t.refresh_token, expiresAt: now + t.expires_in * 1000, obtainedAt: now, tokenType: 'Bearer', deviceId: DEVICE };
    await store.save(tokens);
  };
  const random = prng(SEED);
  const counts = { old: 0, fresh: 0, lost: 0, firstFailed: 0, refreshesAcked: 0, tempLeftovers: 0 };
  const reported = new Map<string, number>();
  let rounds = 0;
  const started = Date.now();
  try {
    await pair();
    // Calibration: one unkilled round measures how long a refresh takes on this machine, so
    // the kill delays spread over the whole refresh (request, rotation, save, next request).
    const cal = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, [CHILD, path], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let n = 0;
      let goAt = 0;
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        for (const l of d.split('\n').filter(Boolean)) {
          const o = JSON.parse(l) as Line;
          if (o.t === 'go') goAt = Date.now();
          if (o.t === 'refreshed' && ++n === 20) child.kill('SIGKILL');
        }
      });
      child.on('error', reject);
      child.on('close', () => resolve((Date.now() - goAt) / Math.max(1, n)));
    });
    const maxDelay = Number(process.env.CIC_FAULT_REFRESH_MAX_DELAY_MS ?? Math.max(5, cal * 2.5));
    console.log(`refresh takes ≈${cal.toFixed(1)} ms here; kill delays uniform in [0, ${maxDelay.toFixed(1)}] ms after the first refresh`);

    let expectLost = false; // the previous round ended with a dead refresh token on flash
    while (rounds < ROUNDS && Date.now() - started < TIME_LIMIT_MS) {
      const before = await store.load();
      if (before.state !== 'ok') throw new Error(`round ${rounds + 1}: store ${before.state} before the round`);
      const storedAt = fingerprint(before.tokens.accessToken);
      const delay = random() * maxDelay;
      const where = `round ${rounds + 1} (seed ${SEED}, delay ${delay.toFixed(2)} ms)`;
      const r = await runRound(env, path, delay);
      assert.is(r.stderr, '', `${where}: child stderr`);
      const start = r.lines[0];
      // A fresh process loads the store: logged in, valid, and hands out exactly the stored token.
      assert.equal(start, { t: 'start', state: 'valid', at: storedAt }, `${where}: start`);
      for (const l of r.lines) if (l.t === 'warning') reported.set(String(l.code), (reported.get(String(l.code)) ?? 0) + 1);

      let first = r.lines[1];
      let baseline = storedAt;
      if (first?.t === 'first-failed') {
        // The stored refresh token was rotated at the server and the new one never reached
        // flash. What the runtime says about it:
        assert.ok(expectLost, `${where}: the first refresh failed although the stored refresh token was alive (${String(first.code)})`);
        assert.is(first.code, 'AUTH_INVALID_GRANT', `${where}: error code`);
        assert.is(first.state, 'dead', `${where}: state`);
        assert.is(first.lastError, 'AUTH_INVALID_GRANT', `${where}: status().lastError`);
        assert.is(first.afterDead, 'AUTH_INVALID_GRANT', `${where}: calls after the grant died reject with its code`);
        counts.firstFailed++;
        reported.set('AUTH_INVALID_GRANT', (reported.get('AUTH_INVALID_GRANT') ?? 0) + 1);
        // The device pairs again in the same process and the round goes on.
        const re = r.lines[2];
        assert.equal({ t: re?.t, persisted: re?.persisted, state: re?.state }, { t: 'relogin', persisted: true, state: 'valid' }, `${where}: re-login`);
        baseline = String(re!.at);
        first = r.lines[3];
        expectLost = false;
      }
      assert.ok(!expectLost, `${where}: a refresh token the server had rotated out still worked`);
      assert.is(first?.t, 'first', `${where}: first refresh`);
      assert.is(r.signal, 'SIGKILL', `${where}: the child must die by the kill (exit ${r.code})`);

      const acked = r.lines.filter((l) => l.t === 'first' || l.t === 'refreshed').map((l) => String(l.at));
      counts.refreshesAcked += acked.length;
      for (const l of r.lines) if (l.t === 'refreshed') assert.is(l.persisted, true, `${where}: an acknowledged refresh was saved`);

      const after = await store.load();
      if (after.state !== 'ok') assert.unreachable(`${where}: after the kill the store is ${after.state}`);
      else {
        assert.is(after.recovered, false, `${where}: newest generation lost`);
        assert.is(after.warning, undefined, `${where}: load warning`);
        const at = fingerprint(after.tokens.accessToken);
        const lastAcked = acked[acked.length - 1]!;
        // Never an older pair than the last acknowledged one.
        assert.ok(!acked.slice(0, -1).includes(at) && at !== baseline, `${where}: the store went back to an older pair`);
        // The access token on flash is always one the server accepts.
        assert.ok(emu.isValidAccessToken(after.tokens.accessToken), `${where}: stored access token rejected by the server`);
        const rtAlive = emu.isValidRefreshToken(after.tokens.refreshToken);
        if (at === lastAcked) {
          if (rtAlive) counts.old++;
          else {
            counts.lost++;
            expectLost = true;
          }
        } else {
          // The refresh in flight: its save landed before the kill, its acknowledgement did not.
          assert.ok(rtAlive, `${where}: the saved in-flight pair has a dead refresh token`);
          counts.fresh++;
        }
      }
      const temps = readdirSync(dirname(path)).filter((f) => f !== 'tokens.bin');
      assert.ok(temps.length <= 1, `${where}: ${temps.length} temp files left`);
      if (temps.length) counts.tempLeftovers++;
      rounds++;
    }
  } finally {
    const s = (Date.now() - started) / 1000;
    console.log(
      `refresh kill test: ${rounds} rounds in ${s.toFixed(1)} s (seed ${SEED}), ${counts.refreshesAcked} refreshes acknowledged; after the kill the store held ` +
        `the last acknowledged pair ${counts.old}×, the in-flight pair ${counts.fresh}×, a rotated-out refresh token ${counts.lost}× ` +
        `(reported by the next process as AUTH_INVALID_GRANT ${counts.firstFailed}×); ${counts.tempLeftovers} rounds left a temp file; ` +
        `coded reports: ${JSON.stringify(Object.fromEntries(reported))}`,
    );
    await emu.stop();
    await rm(dir, { recursive: true, force: true });
  }
  assert.is(rounds, ROUNDS, `only ${rounds} of ${ROUNDS} rounds within ${TIME_LIMIT_MS / 1000} s`);
  assert.ok(counts.old > 0 && counts.fresh > 0, 'kills landed both before and after the save of a refresh');
  // Every lost rotation was reported by the next process (the last round's has no next one).
  assert.ok(counts.firstFailed >= counts.lost - 1 && counts.firstFailed <= counts.lost, 'each lost rotation reported once');
  assert.ok(counts.lost > 0, 'kills also landed between the rotation at the server and the save');
});

test.run();
