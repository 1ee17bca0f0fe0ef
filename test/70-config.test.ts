// Configuration: file < environment < flags, one validation at start that names every bad
// field with its source, typo protection for file keys, and a client secret that never shows
// up in any message. Config files are real temp files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_DEFAULTS, CONFIG_FLAGS, CONFIG_KEYS, loadConfig, validateConfig, type ConfigKey } from '../src/config';
import { parseArgs } from '../src/cli-args';
import { isCicError, type CicError } from '../src/errors';
import { redactText } from '../src/util/secrets';

const dir = mkdtempSync(join(tmpdir(), 'cic-config-'));
const file = (name: string, content: string | object) => {
  const p = join(dir, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
};
const CA = file('ca.pem', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const KEY = file('device.key', Buffer.alloc(32, 7).toString('binary'));

// Distinctive values; the runner also searches every test's captured output for them.
const SECRET = 'cfgTEST-s3cr3t-Qm9x7Lw2vK';
const SECRET_TYPO = 'cfgTEST-typo-s3cr3t-8HnR2';
const SECRET_OVERRIDDEN = 'cfgTEST-overridden-J4k8pW';
if (process.env.CIC_TEST_SECRETS_LOG) appendFileSync(process.env.CIC_TEST_SECRETS_LOG, `${SECRET}\n${SECRET_TYPO}\n${SECRET_OVERRIDDEN}\n`);

function fails(fn: () => unknown, code = 'CONFIG_INVALID'): CicError {
  try {
    fn();
  } catch (e) {
    assert.ok(isCicError(e), `expected a CicError, got ${String(e)}`);
    assert.is((e as CicError).code, code, (e as Error).message);
    return e as CicError;
  }
  assert.unreachable('expected a configuration error');
  throw new Error('unreachable');
}

/** Every text an error exposes: message, toJSON (details), stack, cause. */
function exposed(e: CicError): string {
  return [e.message, JSON.stringify(e), e.stack ?? '', String(e.cause ?? '')].join('\n');
}

// ---- names and defaults ---------------------------------------------------------------------

test('the contract names: file key, environment variable and kebab-case flag', () => {
  const contract: Array<[ConfigKey, string, string]> = [
    ['authUrl', 'CIC_AUTH_URL', 'auth-url'], ['cicUrl', 'CIC_URL', 'cic-url'], ['clientId', 'CIC_CLIENT_ID', 'client-id'],
    ['clientSecret', 'CIC_CLIENT_SECRET', 'client-secret'], ['deviceId', 'CIC_DEVICE_ID', 'device-id'], ['modelId', 'CIC_MODEL_ID', 'model-id'],
    ['userAgent', 'CIC_USER_AGENT', 'user-agent'], ['tokenFile', 'CIC_TOKEN_FILE', 'token-file'], ['caFile', 'CIC_CA_FILE', 'ca-file'],
    ['pingIntervalMs', 'CIC_PING_INTERVAL_MS', 'ping-interval-ms'], ['pingTimeoutMs', 'CIC_PING_TIMEOUT_MS', 'ping-timeout-ms'],
    ['logLevel', 'CIC_LOG_LEVEL', 'log-level'], ['authRegion', 'CIC_AUTH_REGION', 'auth-region'],
    // not contract, but documented
    ['deviceKeyFile', 'CIC_DEVICE_KEY_FILE', 'device-key-file'], ['pingMode', 'CIC_PING_MODE', 'ping-mode'],
    ['connectTimeoutMs', 'CIC_CONNECT_TIMEOUT_MS', 'connect-timeout-ms'], ['eventQueueSize', 'CIC_EVENT_QUEUE_SIZE', 'event-queue-size'],
    ['eventQueueMaxAgeMs', 'CIC_EVENT_QUEUE_MAX_AGE_MS', 'event-queue-max-age-ms'],
    ['eventTimeoutMs', 'CIC_EVENT_TIMEOUT_MS', 'event-timeout-ms'],
    ['clientSecretFile', 'CIC_CLIENT_SECRET_FILE', 'client-secret-file'],
    // issue #14 names these: `run --socket PATH`, CIC_SOCKET
    ['socketPath', 'CIC_SOCKET', 'socket'],
  ];
  assert.equal(CONFIG_KEYS.map((k) => [k.key, k.env, k.flag]), contract);
  for (const k of CONFIG_KEYS) {
    const kebab = k.key.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
    assert.is(k.flag, k.key === 'socketPath' ? 'socket' : kebab, k.key);
    assert.ok(k.description.length > 5, `${k.key} has a description`);
  }
  assert.equal([...CONFIG_FLAGS].sort(), ['config', ...contract.map((c) => c[2])].sort());
});

test('defaults: the documented values, and nothing else is set', () => {
  assert.equal(loadConfig({ env: {} }), { ...CONFIG_DEFAULTS });
  assert.equal({ ...CONFIG_DEFAULTS }, {
    tokenFile: '/var/lib/cic-runtime/token',
    pingIntervalMs: 60_000,
    pingTimeoutMs: 10_000,
    logLevel: 'info',
    authRegion: 'KR',
    pingMode: 'frame',
    connectTimeoutMs: 10_000,
    eventQueueSize: 16,
    eventQueueMaxAgeMs: 30_000,
    eventTimeoutMs: 60_000,
  });
  for (const k of CONFIG_KEYS) {
    assert.is(k.default, (CONFIG_DEFAULTS as Record<string, unknown>)[k.key], `${k.key}: table and defaults agree`);
    if (k.type === 'integer') {
      assert.ok(k.min! >= 1 && k.min! < k.max!, `${k.key} bounds`);
      assert.ok((k.default as number) >= k.min! && (k.default as number) <= k.max!, `${k.key} default within bounds`);
    }
  }
  assert.ok(CONFIG_DEFAULTS.pingTimeoutMs < CONFIG_DEFAULTS.pingIntervalMs);
});

// ---- precedence --------------------------------------------------------------------------------

test('precedence: file < environment < flag, key by key', () => {
  const cfg = file('p.json', { deviceId: 'from-file', modelId: 'm-file', clientId: 'c-file', pingIntervalMs: 30000, logLevel: 'debug' });
  const c = loadConfig({
    flags: { config: cfg, 'device-id': 'from-flag', 'ping-interval-ms': '20000' },
    env: { CIC_DEVICE_ID: 'from-env', CIC_MODEL_ID: 'm-env', CIC_PING_INTERVAL_MS: '25000' },
  });
  assert.is(c.deviceId, 'from-flag');
  assert.is(c.modelId, 'm-env');
  assert.is(c.clientId, 'c-file');
  assert.is(c.pingIntervalMs, 20000);
  assert.is(c.logLevel, 'debug');
  assert.is(c.authRegion, 'KR');
});

test('which config file: configPath option, then --config, then CIC_CONFIG', () => {
  const a = file('which-a.json', { deviceId: 'a' });
  const b = file('which-b.json', { deviceId: 'b' });
  const e = file('which-e.json', { deviceId: 'e' });
  assert.is(loadConfig({ env: { CIC_CONFIG: e } }).deviceId, 'e');
  assert.is(loadConfig({ env: { CIC_CONFIG: e }, flags: { config: b } }).deviceId, 'b');
  assert.is(loadConfig({ env: { CIC_CONFIG: e }, flags: { config: b }, configPath: a }).deviceId, 'a');
  assert.is(loadConfig({ env: { CIC_CONFIG: '' } }).deviceId, undefined);
  fails(() => loadConfig({ env: {}, flags: { config: '' } }), 'USAGE');
});

test('an empty environment variable is unset; an empty flag or file value is an error', () => {
  const cfg = file('empty.json', { deviceId: 'from-file' });
  assert.is(loadConfig({ flags: { config: cfg }, env: { CIC_DEVICE_ID: '' } }).deviceId, 'from-file');
  let e = fails(() => loadConfig({ env: {}, flags: { 'device-id': '' } }));
  assert.ok(e.message.includes('deviceId (from --device-id): must not be empty'), e.message);
  e = fails(() => loadConfig({ env: {}, flags: { config: file('empty2.json', { modelId: '' }) } }));
  assert.match(e.message, /modelId \(from .*empty2\.json\): must not be empty/);
  // null in the file means "not set": the default applies.
  assert.is(loadConfig({ env: {}, flags: { config: file('null.json', { logLevel: null, caFile: null }) } }).logLevel, 'info');
});

test('flags from the argument parser feed loadConfig', () => {
  const cfg = file('cli.json', { deviceId: 'dev-1' });
  const args = parseArgs(['--config', cfg, '--ping-interval-ms=20000', '--log-level', 'warn'], { values: CONFIG_FLAGS });
  const c = loadConfig({ flags: args.flags, env: { CIC_PING_INTERVAL_MS: '9000' } });
  assert.equal([c.deviceId, c.pingIntervalMs, c.logLevel], ['dev-1', 20000, 'warn']);
});

// ---- validation, per field and per source --------------------------------------------------------

// One bad value per field, with the words its message must contain.
const BAD: Record<ConfigKey, [string, string]> = {
  authUrl: ['http://auth.example/', 'must be an https:// URL (got http:)'],
  cicUrl: ['https://cic.example/v1', 'must be https://host[:port] without a path'],
  clientId: [' id-with-spaces ', 'has leading or trailing whitespace'],
  clientSecret: [`${SECRET}\n`, 'must be one line'],
  deviceId: ['bad id!', 'must be 1–128 characters'],
  modelId: ['model/1', 'must be 1–128 characters'],
  userAgent: ['Vendor/Client/1.0 (Linux;hw)', 'invalid User-Agent: firmware version "1.0" is not SemVer'],
  tokenFile: ['state\nfile', 'must be one line'],
  caFile: [join(dir, 'no-such-ca.pem'), `cannot read ${join(dir, 'no-such-ca.pem')} (ENOENT)`],
  pingIntervalMs: ['5s', 'must be an integer between 1000 and 3600000 (got "5s")'],
  pingTimeoutMs: ['0', 'must be an integer between 100 and 600000'],
  logLevel: ['loud', 'must be one of debug, info, warn, error, silent (got "loud")'],
  authRegion: ['US', 'must be one of KR, JP'],
  deviceKeyFile: [dir, `${dir} is not a regular file`],
  pingMode: ['udp', 'must be one of frame, http'],
  connectTimeoutMs: ['1.5', 'must be an integer between 500 and 300000'],
  eventQueueSize: ['-1', 'must be an integer between 1 and 10000'],
  eventQueueMaxAgeMs: ['99999999999', 'must be an integer between 100 and 3600000'],
  eventTimeoutMs: ['500', 'must be an integer between 1000 and 3600000'],
  clientSecretFile: [join(dir, 'no-such-secret'), `cannot read ${join(dir, 'no-such-secret')} (ENOENT)`],
  socketPath: ['run/cic\n.sock', 'must be one line'],
};

test('every field: the message names the field and its source (env, flag, file)', () => {
  assert.equal(Object.keys(BAD).sort(), CONFIG_KEYS.map((k) => k.key).sort(), 'one bad value per key');
  for (const info of CONFIG_KEYS) {
    const [value, words] = BAD[info.key];
    const cfg = file(`bad-${info.key}.json`, { [info.key]: value });
    const sources: Array<[string, () => unknown]> = [
      [info.env, () => loadConfig({ env: { [info.env]: value } })],
      [`--${info.flag}`, () => loadConfig({ env: {}, flags: { [info.flag]: value } })],
      [cfg, () => loadConfig({ env: {}, configPath: cfg })],
    ];
    for (const [origin, run] of sources) {
      const e = fails(run);
      const want = `${info.key} (from ${origin}): ${words}`;
      assert.ok(e.message.includes(want), `${want}\n  in: ${e.message}`);
    }
  }
});

test('the brief example message, verbatim', () => {
  const e = fails(() => loadConfig({ env: { CIC_PING_INTERVAL_MS: '500' } }));
  assert.ok(e.message.includes('pingIntervalMs (from CIC_PING_INTERVAL_MS): must be an integer between 1000 and 3600000'), e.message);
});

test('all problems are reported together, one line each', () => {
  const env: Record<string, string> = {};
  for (const info of CONFIG_KEYS) env[info.env] = BAD[info.key][0];
  const e = fails(() => loadConfig({ env, flags: { config: file('all.json', { pingIntervalMS: 1 }) } }));
  const problems = (e.details as { problems: string[] }).problems;
  // One per key, the misspelt file key, and clientSecret given next to clientSecretFile.
  assert.is(problems.length, CONFIG_KEYS.length + 2, problems.join('\n'));
  assert.ok(problems.some((p) => p.startsWith('clientSecretFile (from CIC_CLIENT_SECRET_FILE): give either clientSecret (from CIC_CLIENT_SECRET) or clientSecretFile, not both')));
  for (const info of CONFIG_KEYS) assert.ok(problems.some((p) => p.startsWith(`${info.key} (from ${info.env}): `)), info.key);
  assert.ok(e.message.startsWith('invalid configuration:\n  '));
});

test('integers: strings are coerced, anything else is refused with what was given', () => {
  assert.is(loadConfig({ env: { CIC_PING_INTERVAL_MS: ' 45000 ' } }).pingIntervalMs, 45000);
  assert.is(loadConfig({ env: {}, configPath: file('int-str.json', { eventQueueSize: '32' }) }).eventQueueSize, 32);
  assert.is(loadConfig({ env: {}, configPath: file('int-num.json', { eventQueueSize: 64 }) }).eventQueueSize, 64);
  for (const bad of ['1e4', '0x10', '10000.0', '', '60 000', '+5000']) {
    if (bad === '') continue; // empty env = unset
    const e = fails(() => loadConfig({ env: { CIC_CONNECT_TIMEOUT_MS: bad } }));
    assert.ok(e.message.includes('connectTimeoutMs (from CIC_CONNECT_TIMEOUT_MS): must be an integer between 500 and 300000'), bad);
  }
  const f = fails(() => loadConfig({ env: {}, configPath: file('int-bad.json', { pingTimeoutMs: 1.5, eventQueueSize: true, connectTimeoutMs: [1] }) }));
  assert.match(f.message, /pingTimeoutMs \(from .*\): must be an integer between 100 and 600000 \(got 1\.5\)/);
  assert.match(f.message, /eventQueueSize \(from .*\): must be an integer between 1 and 10000 \(got a boolean\)/);
  assert.match(f.message, /connectTimeoutMs \(from .*\): must be an integer .* \(got an array\)/);
});

test('strings from the file must be JSON strings', () => {
  const e = fails(() => loadConfig({ env: {}, configPath: file('types.json', { deviceId: 42, authUrl: { href: 'x' }, logLevel: 3 }) }));
  assert.match(e.message, /deviceId \(from .*types\.json\): must be a string \(got 42\)/);
  assert.match(e.message, /authUrl \(from .*types\.json\): must be a string \(got an object\)/);
  assert.match(e.message, /logLevel \(from .*types\.json\): must be a string/);
});

test('enums are checked, case-insensitively, and stored in canonical spelling', () => {
  const c = loadConfig({ env: { CIC_AUTH_REGION: 'jp', CIC_LOG_LEVEL: 'DEBUG', CIC_PING_MODE: 'Http' } });
  assert.equal([c.authRegion, c.logLevel, c.pingMode], ['JP', 'debug', 'http']);
});

test('URLs: https only (loopback too), parseable, no credentials, query or fragment; cicUrl is an origin', () => {
  const ok = loadConfig({ env: { CIC_AUTH_URL: 'https://auth.example.com/v1/', CIC_URL: 'https://127.0.0.1:8443' } });
  assert.equal([ok.authUrl, ok.cicUrl], ['https://auth.example.com/v1/', 'https://127.0.0.1:8443']);
  assert.is(loadConfig({ env: { CIC_URL: 'https://cic.example/' } }).cicUrl, 'https://cic.example/');
  const cases: Array<[string, string, string]> = [
    ['CIC_AUTH_URL', 'http://127.0.0.1:8080/', 'authUrl (from CIC_AUTH_URL): must be an https:// URL'],
    ['CIC_URL', 'http://localhost:8443', 'cicUrl (from CIC_URL): must be an https:// URL'],
    ['CIC_AUTH_URL', 'auth.example.com', 'authUrl (from CIC_AUTH_URL): is not a valid URL'],
    ['CIC_AUTH_URL', 'https://user:pw@auth.example.com/', 'authUrl (from CIC_AUTH_URL): must not carry credentials'],
    ['CIC_AUTH_URL', 'https://auth.example.com/?a=1', 'authUrl (from CIC_AUTH_URL): must not have a query or fragment'],
    ['CIC_URL', 'https://cic.example/#x', 'cicUrl (from CIC_URL): must not have a query or fragment'],
    ['CIC_URL', 'https://cic.example/v1/directives', 'cicUrl (from CIC_URL): must be https://host[:port] without a path'],
  ];
  for (const [name, value, want] of cases) {
    const e = fails(() => loadConfig({ env: { [name]: value } }));
    assert.ok(e.message.includes(want), `${value}: ${e.message}`);
  }
  // A password in a URL is not echoed back.
  const e = fails(() => loadConfig({ env: { CIC_AUTH_URL: 'https://user:pw-Hx81q@auth.example.com/' } }));
  assert.not.ok(e.message.includes('pw-Hx81q'));
});

test('deviceId and modelId: safe characters only', () => {
  const c = loadConfig({ env: { CIC_DEVICE_ID: 'aa123123d6-d900-48a1-b73b-aa6c156353206', CIC_MODEL_ID: 'test_model' } });
  assert.is(c.deviceId, 'aa123123d6-d900-48a1-b73b-aa6c156353206');
  assert.is(loadConfig({ env: { CIC_DEVICE_ID: 'b8:27:eb:12:34:56' } }).deviceId, 'b8:27:eb:12:34:56');
  for (const bad of ['-leading-dash', 'a'.repeat(129), 'dev\u00e9', 'a b', '../x']) {
    const e = fails(() => loadConfig({ env: { CIC_DEVICE_ID: bad } }));
    assert.ok(e.message.includes('deviceId (from CIC_DEVICE_ID): must be 1–128 characters'), bad);
  }
});

test('userAgent is checked against the CIC grammar', () => {
  const ua = 'Vendor/Client/0.8.2+build (Linux 7.0;Raspberry_pi;domain=Sample%40Clova;type=Test%20Type)';
  assert.is(loadConfig({ env: { CIC_USER_AGENT: ua } }).userAgent, ua);
  const e = fails(() => loadConfig({ env: {}, flags: { 'user-agent': 'Vendor/Client/1.0.0 (Linux;hw;type=Test Type)' } }));
  assert.ok(e.message.includes('userAgent (from --user-agent): invalid User-Agent: value of "type" is not URL-encoded'), e.message);
});

test('pingTimeoutMs must be below pingIntervalMs; the message names both sources', () => {
  let e = fails(() => loadConfig({ env: { CIC_PING_INTERVAL_MS: '5000', CIC_PING_TIMEOUT_MS: '5000' } }));
  assert.ok(e.message.includes('pingTimeoutMs: must be smaller than pingIntervalMs (pingTimeoutMs 5000 from CIC_PING_TIMEOUT_MS, pingIntervalMs 5000 from CIC_PING_INTERVAL_MS)'), e.message);
  e = fails(() => loadConfig({ env: {}, flags: { 'ping-interval-ms': '2000' } }));
  assert.ok(e.message.includes('(pingTimeoutMs 10000 by default, pingIntervalMs 2000 from --ping-interval-ms)'), e.message);
  assert.is(loadConfig({ env: { CIC_PING_INTERVAL_MS: '1000', CIC_PING_TIMEOUT_MS: '500' } }).pingTimeoutMs, 500);
});

test('only the effective value is validated: a bad file value overridden by env is not reported', () => {
  const cfg = file('override.json', { pingIntervalMs: 'soon' });
  assert.is(loadConfig({ configPath: cfg, env: { CIC_PING_INTERVAL_MS: '30000' } }).pingIntervalMs, 30000);
});

// ---- the file --------------------------------------------------------------------------------

test('unknown keys in the file are refused by name, with a suggestion when one is close', () => {
  const cfg = file('typo.json', { pingIntervalMS: 1000, 'device-id': 'x', CIC_MODEL_ID: 'm', color: 'blue', deviceId: 'ok-1' });
  const e = fails(() => loadConfig({ configPath: cfg, env: {} }));
  assert.ok(e.message.includes(`pingIntervalMS (from ${cfg}): unknown key (did you mean pingIntervalMs?)`), e.message);
  assert.ok(e.message.includes(`device-id (from ${cfg}): unknown key (did you mean deviceId?)`));
  assert.ok(e.message.includes(`CIC_MODEL_ID (from ${cfg}): unknown key (did you mean modelId?)`));
  assert.ok(e.message.includes(`color (from ${cfg}): unknown key\n`) || e.message.endsWith(`color (from ${cfg}): unknown key`));
  assert.not.ok(e.message.includes('blue'), 'values of unknown keys are not echoed');
});

test('a broken config file: CONFIG_UNREADABLE with the path and the position, never the content', () => {
  const cases: Array<[string, string, string]> = [
    ['b1.json', `{"clientSecret": "${SECRET}",\n "deviceId": }`, 'line 2, column 14'],
    ['b2.json', `{"clientSecret": "${SECRET}", }`, `line 1, column ${`{"clientSecret": "${SECRET}", `.length + 1}`],
    ['b3.json', `{\n  "clientSecret": "${SECRET}"\n  "deviceId": "d"\n}`, 'line 3, column 3'],
    ['b4.json', '', 'line 1, column 1'],
    ['b5.json', `{"clientSecret": "${SECRET}`, `line 1, column ${`{"clientSecret": "${SECRET}`.length + 1}`],
  ];
  for (const [name, text, where] of cases) {
    const p = file(name, text);
    const e = fails(() => loadConfig({ configPath: p, env: {} }), 'CONFIG_UNREADABLE');
    assert.ok(e.message.includes(p), e.message);
    assert.ok(e.message.includes(`(${where})`), `${name}: ${e.message}`);
    assert.not.ok(exposed(e).includes(SECRET), `${name}: the file content leaked`);
    assert.is(e.cause, undefined);
  }
  const arr = fails(() => loadConfig({ configPath: file('arr.json', '[1, 2]'), env: {} }), 'CONFIG_UNREADABLE');
  assert.match(arr.message, /must hold a JSON object/);
  const missing = fails(() => loadConfig({ configPath: join(dir, 'missing.json'), env: {} }), 'CONFIG_UNREADABLE');
  assert.ok(missing.message.includes(join(dir, 'missing.json')));
  assert.match(missing.message, /ENOENT/);
  const isDir = fails(() => loadConfig({ configPath: dir, env: {} }), 'CONFIG_UNREADABLE');
  assert.match(isDir.message, /EISDIR/);
});

test('a byte-order mark at the start of the file is accepted', () => {
  assert.is(loadConfig({ configPath: file('bom.json', '\ufeff{"deviceId": "bom-1"}'), env: {} }).deviceId, 'bom-1');
});

test('relative paths: from the file, relative to its directory; from env or flags, to cwd', () => {
  const sub = join(dir, 'etc', 'cic');
  file('etc/cic/ca.pem', 'pem');
  const cfg = file('etc/cic/rel.json', { tokenFile: 'state/token', caFile: 'ca.pem' });
  const c = loadConfig({ configPath: cfg, env: {} });
  assert.is(c.tokenFile, join(sub, 'state', 'token'));
  assert.is(c.caFile, join(sub, 'ca.pem'));
  const d = loadConfig({ env: { CIC_TOKEN_FILE: 'var/token' }, flags: { 'ca-file': 'ca.pem' }, cwd: dir });
  assert.is(d.tokenFile, join(dir, 'var', 'token'));
  assert.is(d.caFile, CA);
  // The config path itself is relative to cwd.
  assert.is(loadConfig({ configPath: 'etc/cic/rel.json', env: {}, cwd: dir }).tokenFile, join(sub, 'state', 'token'));
});

// ---- files that must exist -------------------------------------------------------------------

test('caFile and deviceKeyFile must be readable regular files', () => {
  const ok = loadConfig({ env: { CIC_CA_FILE: CA, CIC_DEVICE_KEY_FILE: KEY } });
  assert.equal([ok.caFile, ok.deviceKeyFile], [CA, KEY]);
  const e = fails(() => loadConfig({ env: { CIC_CA_FILE: join(dir, 'nope.pem') }, flags: { 'device-key-file': dir } }));
  assert.ok(e.message.includes(`caFile (from CIC_CA_FILE): cannot read ${join(dir, 'nope.pem')} (ENOENT)`), e.message);
  assert.ok(e.message.includes(`deviceKeyFile (from --device-key-file): ${dir} is not a regular file`), e.message);
});

test('the file check is injectable, and validateConfig alone stays pure', () => {
  const seen: string[] = [];
  const c = loadConfig({ env: { CIC_CA_FILE: '/nowhere/ca.pem' }, canRead: (p) => (seen.push(p), true) });
  assert.is(c.caFile, '/nowhere/ca.pem');
  assert.equal(seen, ['/nowhere/ca.pem']);
  const e = fails(() => loadConfig({ env: { CIC_DEVICE_KEY_FILE: KEY }, canRead: () => false }));
  assert.ok(e.message.includes(`deviceKeyFile (from CIC_DEVICE_KEY_FILE): cannot read ${KEY}`));
  const pure = validateConfig({ file: { path: '/etc/cic.json', values: { caFile: 'ca.pem', deviceId: 'd-1' } }, env: { CIC_LOG_LEVEL: 'warn' } }, { fileProblem: null });
  assert.equal([pure.caFile, pure.deviceId, pure.logLevel], ['/etc/ca.pem', 'd-1', 'warn']);
});

// ---- commands need different subsets ---------------------------------------------------------

const LOGIN: ConfigKey[] = ['authUrl', 'clientId', 'clientSecret', 'deviceId'];

test('required subsets: status needs only tokenFile (defaulted); login lists each missing key once', () => {
  assert.is(loadConfig({ env: {}, require: ['tokenFile'] }).tokenFile, CONFIG_DEFAULTS.tokenFile);
  const e = fails(() => loadConfig({ env: { CIC_CLIENT_ID: 'client-1' }, require: LOGIN }));
  const problems = (e.details as { problems: string[] }).problems;
  assert.equal(problems, [
    'authUrl: required (config file key "authUrl", environment CIC_AUTH_URL or --auth-url)',
    'clientSecret: required (config file key "clientSecret", environment CIC_CLIENT_SECRET or --client-secret)',
    'deviceId: required (config file key "deviceId", environment CIC_DEVICE_ID or --device-id)',
  ]);
  const c = loadConfig({ env: { CIC_AUTH_URL: 'https://auth.example/', CIC_CLIENT_ID: 'client-1', CIC_CLIENT_SECRET: SECRET, CIC_DEVICE_ID: 'd-1' }, require: LOGIN });
  assert.is(c.clientId, 'client-1');
});

test('a required key that is present but invalid is reported once, as invalid', () => {
  const e = fails(() => loadConfig({ env: { CIC_AUTH_URL: 'http://auth.example/' }, require: ['authUrl'] }));
  assert.equal((e.details as { problems: string[] }).problems, ['authUrl (from CIC_AUTH_URL): must be an https:// URL (got http:)']);
});

test('keys outside the required subset are still validated', () => {
  const e = fails(() => loadConfig({ env: { CIC_URL: 'http://cic.example' }, require: ['tokenFile'] }));
  assert.ok(e.message.includes('cicUrl (from CIC_URL)'));
});

// ---- the client secret -----------------------------------------------------------------------

test('the client secret never appears in a thrown message or its JSON, whatever goes wrong', () => {
  const runs: Array<() => unknown> = [
    // invalid secret (newline, whitespace) from each source
    () => loadConfig({ env: { CIC_CLIENT_SECRET: `${SECRET}\nx`, CIC_PING_INTERVAL_MS: 'x' } }),
    () => loadConfig({ env: {}, flags: { 'client-secret': ` ${SECRET}` } }),
    () => loadConfig({ env: {}, configPath: file('s1.json', { clientSecret: `${SECRET}\t` }) }),
    () => loadConfig({ env: {}, configPath: file('s1b.json', { clientSecret: [SECRET] }) }),
    // the secret pasted into the wrong fields, next to a valid secret
    () => loadConfig({ env: { CIC_CLIENT_SECRET: SECRET, CIC_PING_INTERVAL_MS: SECRET, CIC_LOG_LEVEL: SECRET, CIC_DEVICE_ID: SECRET, CIC_AUTH_URL: SECRET, CIC_USER_AGENT: SECRET } }),
    () => loadConfig({ env: { CIC_CLIENT_SECRET: SECRET, CIC_AUTH_URL: `https://auth.example/?client_secret=${encodeURIComponent(SECRET)}` } }),
    // an overridden secret still counts (echo candidates: enum words are quoted back)
    () => loadConfig({ configPath: file('s2.json', { clientSecret: SECRET_OVERRIDDEN }), env: { CIC_CLIENT_SECRET: 'other-secret-1', CIC_LOG_LEVEL: SECRET_OVERRIDDEN } }),
    // required but missing, next to a secret-bearing file
    () => loadConfig({ configPath: file('s3.json', { clientSecret: SECRET }), env: {}, require: LOGIN }),
  ];
  for (const [i, run] of runs.entries()) {
    const e = fails(run);
    for (const s of [SECRET, SECRET_OVERRIDDEN]) assert.not.ok(exposed(e).includes(s), `run ${i} leaked a secret`);
    assert.not.ok(exposed(e).includes(encodeURIComponent(SECRET)), `run ${i} leaked the encoded secret`);
  }
});

test('secret values are not echoed even when too short for the redactor', () => {
  const short = 'Zq9#'; // below the redactor's minimum length: only "never echo" protects it
  const e = fails(() => loadConfig({ env: { CIC_CLIENT_SECRET: ` ${short}` } }));
  assert.ok(e.message.includes('clientSecret (from CIC_CLIENT_SECRET): has leading or trailing whitespace'));
  assert.not.ok(exposed(e).includes(short));
});

test('the client secret is registered with the redactor, from every layer and misspelt keys', () => {
  const cfg = file('s4.json', { clientSecrte: SECRET_TYPO, deviceId: 'd-1' });
  fails(() => loadConfig({ configPath: cfg, env: {} }));
  assert.is(redactText(`x ${SECRET_TYPO} y`), 'x [redacted] y');
  loadConfig({ env: { CIC_CLIENT_SECRET: SECRET } });
  assert.is(redactText(SECRET), '[redacted]');
});

test.run();
