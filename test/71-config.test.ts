import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_KEYS, loadConfig } from '../src/config';
import { parseArgs } from '../src/cli-args';
import { jsonErrorOffset } from '../src/util/json-position';
import type { CicError } from '../src/errors';

const dir = mkdtempSync(join(tmpdir(), 'cic-config-'));
const file = (name: string, content: string) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
const SECRET = 'cfg-secret-Zq81mX0vP3';

function fails(fn: () => unknown): CicError {
  try {
    fn();
  } catch (e) {
    return e as CicError;
  }
  assert.unreachable('expected a configuration error');
  throw new Error();
}

test('defaults apply when nothing is given', () => {
  const c = loadConfig({ env: {} });
  assert.is(c.pingIntervalMs, 60_000);
  assert.is(c.pingTimeoutMs, 10_000);
  assert.is(c.logLevel, 'info');
  assert.is(c.authRegion, 'KR');
  assert.is(c.tokenFile, '/var/lib/cic-runtime/token');
  assert.is(c.pingMode, 'frame');
});

test('precedence: file < environment < flag', () => {
  const cfg = file('p.json', JSON.stringify({ deviceId: 'from-file', modelId: 'm-file', pingIntervalMs: 30000 }));
  const c = loadConfig({ flags: { config: cfg, 'device-id': 'from-flag' }, env: { CIC_DEVICE_ID: 'from-env', CIC_MODEL_ID: 'm-env' } });
  assert.is(c.deviceId, 'from-flag');
  assert.is(c.modelId, 'm-env');
  assert.is(c.pingIntervalMs, 30000);
});

test('every contract key has its environment variable and flag', () => {
  const contract: Array<[string, string]> = [
    ['authUrl', 'CIC_AUTH_URL'], ['cicUrl', 'CIC_URL'], ['clientId', 'CIC_CLIENT_ID'], ['clientSecret', 'CIC_CLIENT_SECRET'],
    ['deviceId', 'CIC_DEVICE_ID'], ['modelId', 'CIC_MODEL_ID'], ['userAgent', 'CIC_USER_AGENT'], ['tokenFile', 'CIC_TOKEN_FILE'],
    ['caFile', 'CIC_CA_FILE'], ['pingIntervalMs', 'CIC_PING_INTERVAL_MS'], ['pingTimeoutMs', 'CIC_PING_TIMEOUT_MS'],
    ['logLevel', 'CIC_LOG_LEVEL'], ['authRegion', 'CIC_AUTH_REGION'],
  ];
  for (const [key, env] of contract) {
    const info = CONFIG_KEYS.find((k) => k.key === key);
    assert.ok(info, key);
    assert.is(info!.env, env);
    assert.is(info!.flag, key.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`));
  }
});

test('each invalid field is named with its source, all at once', () => {
  const e = fails(() =>
    loadConfig({
      env: { CIC_PING_INTERVAL_MS: '5s', CIC_LOG_LEVEL: 'loud', CIC_URL: 'http://cic.example', CIC_AUTH_REGION: 'US' },
      flags: { 'user-agent': 'nope', 'device-id': 'bad id!' },
    }),
  );
  assert.is(e.code, 'CONFIG_INVALID');
  for (const part of [
    'pingIntervalMs (from CIC_PING_INTERVAL_MS): must be an integer',
    'logLevel (from CIC_LOG_LEVEL): must be one of',
    'cicUrl (from CIC_URL): must be an https:// URL',
    'authRegion (from CIC_AUTH_REGION)',
    'userAgent (from --user-agent): invalid User-Agent',
    'deviceId (from --device-id)',
  ]) {
    assert.ok(e.message.includes(part), `${part} in ${e.message}`);
  }
});

test('pingTimeoutMs must be below pingIntervalMs', () => {
  const e = fails(() => loadConfig({ env: { CIC_PING_INTERVAL_MS: '5000', CIC_PING_TIMEOUT_MS: '5000' } }));
  assert.match(e.message, /pingTimeoutMs: must be smaller than pingIntervalMs/);
});

test('unknown keys in the file are refused by name (typo protection)', () => {
  const cfg = file('u.json', JSON.stringify({ pingIntervalMS: 1000 }));
  const e = fails(() => loadConfig({ flags: { config: cfg }, env: {} }));
  assert.match(e.message, /pingIntervalMS \(from .*u\.json\): unknown key/);
});

test('a broken config file names the path and the position, never the content', () => {
  const cfg = file('b.json', `{"clientSecret": "${SECRET}",\n "deviceId": }`);
  const e = fails(() => loadConfig({ flags: { config: cfg }, env: {} }));
  assert.is(e.code, 'CONFIG_UNREADABLE');
  assert.ok(e.message.includes(cfg));
  assert.match(e.message, /line 2, column 14/);
  assert.not.ok(e.message.includes(SECRET));
  const missing = fails(() => loadConfig({ flags: { config: join(dir, 'missing.json') }, env: {} }));
  assert.is(missing.code, 'CONFIG_UNREADABLE');
  assert.match(missing.message, /ENOENT/);
});

test('required fields per command, with where to set them', () => {
  const e = fails(() => loadConfig({ env: {}, require: ['authUrl', 'clientSecret'] }));
  assert.match(e.message, /authUrl: required \(config file key "authUrl", environment CIC_AUTH_URL or --auth-url\)/);
  assert.match(e.message, /clientSecret: required/);
});

test('the client secret never appears in an error, even when it is itself invalid', () => {
  const e = fails(() => loadConfig({ env: { CIC_CLIENT_SECRET: `${SECRET}\nx`, CIC_PING_INTERVAL_MS: 'x' } }));
  assert.not.ok(e.message.includes(SECRET));
  assert.not.ok(JSON.stringify(e).includes(SECRET));
});

test('JSON error offsets match where the text goes wrong', () => {
  const cases: Array<[string, number]> = [['{"a": }', 6], ['{"a": 1,}', 8], ['[1 2]', 3], ['{"a": "x\\u12"}', 9], ['{} x', 3], ['', 0], ['{"a": tru}', 6], ['{"a": [1, {"b": null}]}', -1]];
  for (const [text, want] of cases) assert.is(jsonErrorOffset(text), want, text);
  for (const valid of ['0', '-1.5e3', '"\\n"', '{"k": [true, false, null, {}]}']) assert.is(jsonErrorOffset(valid), -1, valid);
});

test('caFile must be readable', () => {
  const e = fails(() => loadConfig({ env: { CIC_CA_FILE: join(dir, 'nope.pem') } }));
  assert.match(e.message, /caFile \(from CIC_CA_FILE\): cannot read/);
  const ok = loadConfig({ env: { CIC_CA_FILE: '/anything' }, canRead: () => true });
  assert.is(ok.caFile, '/anything');
});

test('argument parser: values, =values, booleans, help, terminator, unknowns', () => {
  const spec = { values: ['code', 'config'], booleans: ['force'] };
  assert.equal(parseArgs(['--code', 'a', '--config=b', '--force', '--', '--x'], spec), { flags: { code: 'a', config: 'b', force: true }, positionals: ['--x'], help: false });
  assert.is(parseArgs(['-h'], spec).help, true);
  assert.throws(() => parseArgs(['--nope'], spec), (e: CicError) => e.code === 'USAGE' && e.message.includes('--nope'));
  assert.throws(() => parseArgs(['--code'], spec), (e: CicError) => e.code === 'USAGE' && /needs a value/.test(e.message));
  assert.throws(() => parseArgs(['--code', '--force'], spec), (e: CicError) => e.code === 'USAGE');
  assert.throws(() => parseArgs(['--force=1'], spec), (e: CicError) => e.code === 'USAGE');
  assert.throws(() => parseArgs(['-x'], spec), (e: CicError) => e.code === 'USAGE');
});

test.run();
