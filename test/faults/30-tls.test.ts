// TLS refusals through the real CicClient on the real clock: wrong host name, a self-signed
// certificate outside the configured CA, an expired certificate, a server without ALPN h2,
// and a device clock before the certificate's start date. Each is refused with its own code
// before a single HTTP/2 byte (let alone the token) reaches the server, and retries follow the
// backoff instead of spinning. A last group proves there is no way to turn verification off:
// no such configuration key, every TLS call site pins verification on in the runtime's
// source, and NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment changes nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import { httpRequest } from '../../src/auth/http-request';
import { CONFIG_KEYS } from '../../src/config';
import { isCicError, type CicError } from '../../src/errors';
import { createLogger } from '../../src/log';
import { testPki, type CertPair } from '../support/certs';
import { startFaultClient } from './support/fault-client';
import { now, outcome, report, sleep, until } from './support/fault-measure';

const pki = testPki();
const root = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..', '..');

interface TlsServer {
  port: number;
  /** TLS handshakes the server saw complete. */
  secure: number;
  /** Application bytes received after a handshake (an HTTP/2 preface, a request…). */
  appBytes: number;
  handshakes: number;
  close(): Promise<void>;
}

/** `alpn` null: the server takes part in no ALPN negotiation at all. */
async function startTlsServer(cert: CertPair, alpn: string[] | null): Promise<TlsServer> {
  const s: TlsServer = { port: 0, secure: 0, appBytes: 0, handshakes: 0, close: async () => {} };
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ key: cert.key, cert: cert.cert, ...(alpn ? { ALPNProtocols: alpn } : {}) }, (socket) => {
    s.secure++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => (s.appBytes += d.length));
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('connection', () => s.handshakes++);
  server.on('tlsClientError', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  s.port = (server.address() as AddressInfo).port;
  s.close = () =>
    new Promise<void>((r) => {
      for (const so of sockets) so.destroy();
      server.close(() => r());
    });
  return s;
}

interface Refusal {
  codes: string[];
  attempts: number;
  firstMs: number;
  messages: string[];
  server: TlsServer;
}

/** Runs the client against `cert` for `windowMs`; returns every failure code and attempt. */
async function refusedBy(cert: CertPair, opts: { host?: string; alpn?: string[] | null; windowMs?: number } = {}): Promise<Refusal> {
  const server = await startTlsServer(cert, opts.alpn === undefined ? ['h2'] : opts.alpn);
  const lines: string[] = [];
  const log = createLogger({ level: 'warn', write: (l) => lines.push(l) });
  const fc = startFaultClient(`https://${opts.host ?? '127.0.0.1'}:${server.port}`, { log, backoff: { random: () => 0.5 } });
  const t0 = now();
  try {
    await until(() => fc.states.some((s) => s.to === 'reconnecting'), 'the first refusal', 5_000);
    const firstMs = fc.states.find((s) => s.to === 'reconnecting')!.at - t0;
    await sleep((opts.windowMs ?? 2_000) - (now() - t0));
    assert.ok(fc.states.every((s) => s.to !== 'ready' && s.to !== 'opening-downchannel'), 'never got past connecting');
    return {
      codes: fc.states.filter((s) => s.to === 'reconnecting').map((s) => s.code!),
      attempts: fc.attempts(),
      firstMs,
      messages: lines,
      server,
    };
  } finally {
    await fc.stop();
    await server.close();
  }
}

/** Attempt times of the shipped backoff with the dice at 0.5 (ms after the first attempt). */
const SCHEDULE = [0, 125, 375, 875, 1_875, 3_875, 7_875];

/** Shared assertions: one code throughout, backoff-paced attempts, nothing sent to the server. */
function assertRefused(name: string, r: Refusal, code: string, windowMs = 2_000): void {
  assert.ok(r.codes.length >= 2, `${name}: ${r.codes.length} failures; log: ${r.messages.join('')}`);
  assert.ok(r.codes.every((c) => c === code), `${name}: codes ${r.codes.join(',')}`);
  // Never more attempts than the backoff schedule allows in the window: no tight loop.
  const allowed = SCHEDULE.filter((t) => t < windowMs).length;
  assert.ok(r.attempts <= allowed, `${name}: ${r.attempts} attempts in ${windowMs} ms (schedule allows ${allowed})`);
  assert.is(r.server.appBytes, 0, `${name}: no application byte reached the server`);
  // Logged with the code on every attempt: the failure is visible, not a silent loop.
  const logged = r.messages.map((l) => JSON.parse(l) as { msg: string; code?: string }).filter((l) => l.msg === 'cic attempt failed');
  assert.is(logged.length, r.codes.length, `${name}: one warning per failed attempt`);
  assert.ok(logged.every((l) => l.code === code));
  report(`tls-${name}`, { code, detect: r.firstMs, attempts: r.attempts, windowMs });
}

test('a certificate for another host name: H2_TLS_HOSTNAME', async () => {
  const byIp = await refusedBy(pki.wrongHost);
  assertRefused('wrong-hostname', byIp, 'H2_TLS_HOSTNAME');
  // The same with a DNS name in the URL: the certificate names wrong.invalid, not localhost.
  const byName = await refusedBy(pki.wrongHost, { host: 'localhost', windowMs: 1_000 });
  assert.ok(byName.codes.length >= 1 && byName.codes.every((c) => c === 'H2_TLS_HOSTNAME'), byName.codes.join(','));
  assert.is(byName.server.appBytes, 0);
});

test('a self-signed certificate that is not in the configured CA: H2_TLS_CERT', async () => {
  const r = await refusedBy(pki.selfSigned);
  assertRefused('self-signed', r, 'H2_TLS_CERT');
});

test('an expired certificate: H2_TLS_EXPIRED', async () => {
  const r = await refusedBy(pki.expired);
  assertRefused('expired', r, 'H2_TLS_EXPIRED');
});

test('a server without ALPN h2 (http/1.1 only, or no ALPN at all): H2_ALPN, and not one HTTP/2 byte is written', async () => {
  const h1 = await refusedBy(pki.server, { alpn: ['http/1.1'] });
  assertRefused('alpn-http1', h1, 'H2_ALPN');
  const none = await refusedBy(pki.server, { alpn: null });
  assertRefused('alpn-none', none, 'H2_ALPN');
  assert.ok(none.server.handshakes >= 2, 'the client did reach the server');
});

test('device clock before the certificate start date: H2_TLS_CLOCK saying the clock is not set, retried on the backoff schedule', async () => {
  // The test PKI's not-yet-valid certificate starts in 2099: to OpenSSL, "now" is before
  // notBefore, exactly what a device whose clock was never set (1970 at boot) sees.
  const r = await refusedBy(pki.notYetValid, { windowMs: 4_000 });
  assertRefused('clock-not-set', r, 'H2_TLS_CLOCK', 4_000);
  const logged = r.messages.map((l) => JSON.parse(l) as { msg: string; message?: string });
  const warn = logged.find((l) => l.msg === 'cic attempt failed')!;
  assert.match(String(warn.message), /clock/i, 'the log says why: the clock');
  // The same condition on the auth path (token refresh over HTTPS) is named the same way.
  const server = await startTlsServer(pki.notYetValid, null);
  try {
    const err = await outcome(httpRequest({ method: 'GET', url: new URL(`https://127.0.0.1:${server.port}/`), timeoutMs: 3_000, caPem: pki.ca }));
    assert.ok(isCicError(err, 'AUTH_NETWORK'), String(err));
    assert.match((err as CicError).message, /clock/);
    assert.is((err as CicError).details?.reason, 'CERT_NOT_YET_VALID');
  } finally {
    await server.close();
  }
});

test('no configuration value turns verification off: config keys, every TLS call site in the runtime, the bundle', async () => {
  // 1. No configuration key, environment variable or flag that could mean "skip verification".
  const loose = /insecure|verif|reject|unauthori[sz]ed|skip|no.?check|allow.?(self|invalid|untrusted|any)|trust.?all|tls.?(off|check)/i;
  for (const k of CONFIG_KEYS) {
    for (const name of [k.key, k.env, k.flag]) assert.not.match(name, loose, `configuration name ${name}`);
  }
  // 2. The runtime's own source (every file the shipped bundle is built from).
  const meta = await build({
    entryPoints: [join(root, 'src/cli.ts'), join(root, 'src/index.ts')],
    bundle: true,
    write: false,
    outdir: join(root, 'build', 'tls-source-check'),
    metafile: true,
    platform: 'node',
    format: 'cjs',
    logLevel: 'silent',
    define: { __CIC_VERSION__: '"0.0.0"' },
  });
  const files = Object.keys(meta.metafile!.inputs).filter((f) => /(^|\/)src\/.*\.ts$/.test(f));
  assert.ok(files.length > 20, `${files.length} runtime source files`);
  let tlsSites = 0;
  for (const f of files) {
    // Code only: comments may name what they guard against.
    const text = readFileSync(join(root, f.replace(/^.*?(src\/)/, '$1')), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    assert.not.match(text, /NODE_TLS_REJECT_UNAUTHORIZED/, `${f} reads NODE_TLS_REJECT_UNAUTHORIZED`);
    for (const m of text.matchAll(/rejectUnauthorized\s*:\s*([^,\n}]+)/g)) assert.is(m[1]!.trim(), 'true', `${f}: rejectUnauthorized: ${m[1]}`);
    for (const m of text.matchAll(/checkServerIdentity\s*:([^\n]+)/g)) assert.match(m[1]!, /tls\.checkServerIdentity\(/, `${f}: checkServerIdentity must delegate to tls.checkServerIdentity`);
    // Every file that opens TLS connections pins verification on explicitly, so nothing in
    // the environment can switch it off.
    const opens = /\btls\.connect\(|\bhttps\.request\b|\(url\.protocol === 'https:' \? https : http\)\.request\(/.test(text);
    if (opens) {
      tlsSites++;
      assert.match(text, /rejectUnauthorized:\s*true/, `${f} opens TLS connections without rejectUnauthorized: true`);
    }
  }
  assert.ok(tlsSites >= 2, `TLS call sites checked: ${tlsSites} (HTTP/2 connection and auth client)`);
  // 3. The bundle, if built: verification is never switched off in the shipped file either.
  const bundle = join(root, 'dist', 'cic-runtime.js');
  if (existsSync(bundle)) {
    const text = readFileSync(bundle, 'utf8');
    assert.not.match(text, /rejectUnauthorized:\s*(!1|false|0)\b/);
    assert.not.match(text, /NODE_TLS_REJECT_UNAUTHORIZED/);
  }
});

test('NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment does not turn verification off (CIC and auth paths)', async () => {
  const saved = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  const savedEmit = process.emitWarning;
  process.emitWarning = () => {}; // Node warns once that the variable is insecure; expected here
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  try {
    const r = await refusedBy(pki.selfSigned, { windowMs: 1_000 });
    assert.ok(r.codes.length >= 1 && r.codes.every((c) => c === 'H2_TLS_CERT'), r.codes.join(','));
    assert.is(r.server.appBytes, 0, 'the HTTP/2 preface never went out');
    const server = await startTlsServer(pki.selfSigned, null);
    try {
      const err = await outcome(httpRequest({ method: 'POST', url: new URL(`https://127.0.0.1:${server.port}/token`), form: { a: 'b' }, timeoutMs: 3_000, caPem: pki.ca }));
      assert.ok(isCicError(err, 'AUTH_NETWORK'), String(err));
      assert.is((err as CicError).details?.reason, 'DEPTH_ZERO_SELF_SIGNED_CERT');
      assert.is(server.appBytes, 0, 'no request (and no credential) reached the unverified server');
    } finally {
      await server.close();
    }
  } finally {
    if (saved === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = saved;
    process.emitWarning = savedEmit;
  }
});

test.run();
