// Secrets off the command line: a login secret from a file or standard input, the client
// secret from clientSecretFile, the checks on the text (never quoted back), and the warning
// that argument forms print.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { appendFileSync, chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { MAX_SECRET_BYTES, checkSecretText, readSecretFileSync } from '../src/util/secret-text';
import { readLoginSecret } from '../src/cli/login-secret';
import { SECRET_ON_COMMAND_LINE, warnSecretArguments } from '../src/cli/argv-secrets';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/log';
import { isCicError, type CicError } from '../src/errors';
import { redactText } from '../src/util/secrets';

const dir = mkdtempSync(join(tmpdir(), 'cic-secret-in-'));
const TOKEN = 'acct-TOKEN-Vq81mZ3xP0';
const CODE = 'auth-CODE-Lk29sQ7wN4';
const CLIENT_SECRET = 'client-SECRET-Hy63tB5mR1';
if (process.env.CIC_TEST_SECRETS_LOG) appendFileSync(process.env.CIC_TEST_SECRETS_LOG, `${TOKEN}\n${CODE}\n${CLIENT_SECRET}\n`);

function secretFile(name: string, content: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, content, { mode });
  chmodSync(p, mode); // the umask may have taken bits away
  return p;
}

const stdin = (text: string) => Readable.from([Buffer.from(text)]);
const noStdin = () => Readable.from([]);

async function usage(flags: Record<string, string>, input: Readable, want: RegExp, secret?: string): Promise<void> {
  try {
    await readLoginSecret(flags, input);
  } catch (e) {
    assert.ok(isCicError(e, 'USAGE'), String(e));
    assert.match((e as Error).message, want);
    if (secret) assert.not.ok(JSON.stringify(e).includes(secret) || (e as Error).message.includes(secret), 'the value was quoted');
    return;
  }
  assert.unreachable(`${JSON.stringify(flags)} was accepted`);
}

test('the text: one trailing newline dropped; anything but one visible word refused, unquoted', () => {
  assert.equal(checkSecretText(`${TOKEN}\n`), { value: TOKEN });
  assert.equal(checkSecretText(`${TOKEN}\r\n`), { value: TOKEN });
  assert.equal(checkSecretText(TOKEN), { value: TOKEN });
  const cases: Array<[string, RegExp]> = [
    ['', /is empty/],
    ['\n', /is empty/],
    [`${TOKEN}\n\n`, /more than one line/],
    [`${TOKEN}\nsecond`, /more than one line/],
    [`${TOKEN} x`, /whitespace/],
    [` ${TOKEN}`, /whitespace/],
    [`${TOKEN}\t`, /whitespace/],
    [`${TOKEN}\u00e9`, /non-ASCII/],
    [`${TOKEN}\u0007`, /control/],
    ['x'.repeat(MAX_SECRET_BYTES + 1), /longer than 8192 bytes/],
  ];
  for (const [text, want] of cases) {
    const r = checkSecretText(text);
    assert.ok('problem' in r, JSON.stringify(text));
    assert.match((r as { problem: string }).problem, want);
    assert.not.ok((r as { problem: string }).problem.includes(TOKEN));
  }
  assert.equal(checkSecretText('x'.repeat(MAX_SECRET_BYTES)), { value: 'x'.repeat(MAX_SECRET_BYTES) });
});

test('a secret file: 0600/0400 read; group/other access, absence and a directory refused by path', () => {
  assert.equal(readSecretFileSync(secretFile('ok', `${TOKEN}\n`)), { value: TOKEN });
  assert.equal(readSecretFileSync(secretFile('ro', TOKEN, 0o400)), { value: TOKEN });
  const lax = secretFile('lax', TOKEN, 0o644);
  assert.equal(readSecretFileSync(lax), { problem: `${lax} is accessible to group/other (mode 0644); chmod 600 it` });
  assert.equal(readSecretFileSync(secretFile('grp', TOKEN, 0o640)), { problem: `${join(dir, 'grp')} is accessible to group/other (mode 0640); chmod 600 it` });
  assert.equal(readSecretFileSync(join(dir, 'none')), { problem: `cannot read ${join(dir, 'none')} (ENOENT)` });
  assert.equal(readSecretFileSync(dir), { problem: `cannot read ${dir} (EISDIR)` });
  assert.equal(readSecretFileSync(secretFile('two', `${TOKEN}\n${TOKEN}\n`)), { problem: `${join(dir, 'two')} holds more than one line` });
  assert.equal(readSecretFileSync(secretFile('huge', 'y'.repeat(3 * MAX_SECRET_BYTES))), { problem: `${join(dir, 'huge')} is longer than 8192 bytes` });
});

test('login: --account-token-file - reads standard input; --code-file PATH the file; argument forms as given', async () => {
  assert.equal(await readLoginSecret({ 'account-token-file': '-' }, stdin(`${TOKEN}\n`)), { kind: 'account-token', value: TOKEN });
  assert.equal(await readLoginSecret({ 'code-file': '-' }, Readable.from([Buffer.from(CODE.slice(0, 5)), Buffer.from(`${CODE.slice(5)}\r\n`)])), { kind: 'code', value: CODE });
  assert.equal(await readLoginSecret({ 'code-file': secretFile('code', `${CODE}\n`) }, noStdin()), { kind: 'code', value: CODE });
  assert.equal(await readLoginSecret({ 'account-token-file': secretFile('acct', TOKEN) }, noStdin()), { kind: 'account-token', value: TOKEN });
  assert.equal(await readLoginSecret({ 'account-token': TOKEN }, noStdin()), { kind: 'account-token', value: TOKEN });
  assert.equal(await readLoginSecret({ code: CODE, 'log-level': 'debug' }, noStdin()), { kind: 'code', value: CODE });
  // Registered with the redactor as soon as it is read.
  assert.is(redactText(`x ${TOKEN} ${CODE}`), 'x [redacted] [redacted]');
});

test('login: exactly one source', async () => {
  await usage({}, noStdin(), /exactly one of --account-token-file PATH\|-, --code-file PATH\|-, --account-token TOKEN or --code CODE \(got none\)/);
  await usage({ 'account-token-file': '-', 'code-file': '-' }, noStdin(), /\(got --account-token-file and --code-file\)/);
  await usage({ 'account-token': TOKEN, code: CODE }, noStdin(), /\(got --account-token and --code\)/, TOKEN);
  await usage({ 'account-token-file': '-', 'account-token': TOKEN }, noStdin(), /\(got --account-token-file and --account-token\)/, TOKEN);
});

test('login: empty, multi-line or spaced values are USAGE errors naming the flag, not the value', async () => {
  await usage({ 'account-token-file': '-' }, noStdin(), /^--account-token-file -: standard input is empty$/);
  await usage({ 'account-token-file': '-' }, stdin('\n'), /standard input is empty/);
  await usage({ 'code-file': '-' }, stdin(`${CODE}\n${CODE}\n`), /^--code-file -: standard input holds more than one line$/, CODE);
  await usage({ 'account-token-file': '-' }, stdin(`Bearer ${TOKEN}\n`), /standard input holds whitespace/, TOKEN);
  await usage({ 'account-token-file': secretFile('spaced', `${TOKEN} \n`) }, noStdin(), /^--account-token-file: .*spaced holds whitespace/, TOKEN);
  await usage({ 'code-file': secretFile('lax-code', CODE, 0o604) }, noStdin(), /^--code-file: .*lax-code is accessible to group\/other \(mode 0604\)/, CODE);
  await usage({ 'code-file': join(dir, 'nope') }, noStdin(), /^--code-file: cannot read .*nope \(ENOENT\)$/);
  await usage({ 'account-token': '' }, noStdin(), /^--account-token: the value is empty$/);
  await usage({ code: `${CODE} x` }, noStdin(), /^--code: the value holds whitespace/, CODE);
  // Standard input is not buffered without bound.
  const endless = Readable.from((function* () {
    for (;;) yield Buffer.alloc(4096, 0x41);
  })());
  await usage({ 'account-token-file': '-' }, endless, /longer than 8192 bytes/);
});

test('argument forms: one warn line each, naming the flag and the safer form, never the value', () => {
  const lines: string[] = [];
  const log = createLogger({ level: 'info', write: (l) => lines.push(l) });
  warnSecretArguments({ 'account-token': TOKEN, 'client-secret': CLIENT_SECRET, 'account-token-file': '-', 'log-level': 'info' }, log);
  assert.is(lines.length, 2);
  const [a, c] = lines.map((l) => JSON.parse(l));
  assert.equal([a.level, a.code, a.flag], ['warn', SECRET_ON_COMMAND_LINE, '--account-token']);
  assert.match(a.msg, /other processes can read it; use --account-token-file PATH, or --account-token-file - to read standard input/);
  assert.equal([c.code, c.flag], [SECRET_ON_COMMAND_LINE, '--client-secret']);
  assert.match(c.msg, /clientSecret \(file mode 0600\), clientSecretFile, or CIC_CLIENT_SECRET/);
  lines.length = 0;
  warnSecretArguments({ code: CODE }, log);
  assert.match(JSON.parse(lines[0]!).msg, /use --code-file PATH/);
  for (const l of lines) assert.not.ok(l.includes(TOKEN) || l.includes(CODE) || l.includes(CLIENT_SECRET));
  lines.length = 0;
  warnSecretArguments({ 'code-file': '-', 'account-token-file': 'x' }, log);
  assert.is(lines.length, 0);
});

const AUTH_ENV = { CIC_AUTH_URL: 'https://auth.example/', CIC_CLIENT_ID: 'client-1', CIC_DEVICE_ID: 'd-1' };
const LOGIN_KEYS = ['authUrl', 'clientId', 'clientSecret', 'deviceId'] as const;

function configError(run: () => unknown): CicError {
  try {
    run();
  } catch (e) {
    assert.ok(isCicError(e, 'CONFIG_INVALID'), String(e));
    return e as CicError;
  }
  assert.unreachable('expected CONFIG_INVALID');
  throw new Error();
}

test('clientSecretFile: read into clientSecret (newline dropped), from the file, env or flag', () => {
  const p = secretFile('client-secret', `${CLIENT_SECRET}\n`);
  assert.is(loadConfig({ env: { ...AUTH_ENV, CIC_CLIENT_SECRET_FILE: p }, require: LOGIN_KEYS }).clientSecret, CLIENT_SECRET);
  assert.is(loadConfig({ env: AUTH_ENV, flags: { 'client-secret-file': p }, require: LOGIN_KEYS }).clientSecret, CLIENT_SECRET);
  const cfg = secretFile('cfg.json', JSON.stringify({ clientSecretFile: 'client-secret' }), 0o644);
  const c = loadConfig({ env: AUTH_ENV, configPath: cfg, require: LOGIN_KEYS });
  assert.equal([c.clientSecret, c.clientSecretFile], [CLIENT_SECRET, p]);
});

test('clientSecretFile: refused next to clientSecret, when others may read it, or when not one line', () => {
  const p = secretFile('client-secret-2', CLIENT_SECRET);
  let e = configError(() => loadConfig({ env: { ...AUTH_ENV, CIC_CLIENT_SECRET: CLIENT_SECRET }, flags: { 'client-secret-file': p } }));
  assert.ok(e.message.includes('clientSecretFile (from --client-secret-file): give either clientSecret (from CIC_CLIENT_SECRET) or clientSecretFile, not both'), e.message);
  const lax = secretFile('client-secret-lax', CLIENT_SECRET, 0o644);
  e = configError(() => loadConfig({ env: { ...AUTH_ENV, CIC_CLIENT_SECRET_FILE: lax }, require: LOGIN_KEYS }));
  assert.equal((e.details as { problems: string[] }).problems, [`clientSecretFile (from CIC_CLIENT_SECRET_FILE): ${lax} is accessible to group/other (mode 0644); chmod 600 it`]);
  const two = secretFile('client-secret-two', `${CLIENT_SECRET}\nmore\n`);
  e = configError(() => loadConfig({ env: { ...AUTH_ENV, CIC_CLIENT_SECRET_FILE: two }, require: LOGIN_KEYS }));
  assert.ok(e.message.includes(`clientSecretFile (from CIC_CLIENT_SECRET_FILE): ${two} holds more than one line`), e.message);
  const missing = join(dir, 'client-secret-none');
  e = configError(() => loadConfig({ env: { ...AUTH_ENV, CIC_CLIENT_SECRET_FILE: missing }, require: LOGIN_KEYS }));
  assert.equal((e.details as { problems: string[] }).problems, [`clientSecretFile (from CIC_CLIENT_SECRET_FILE): cannot read ${missing} (ENOENT)`], 'reported once, not also as a missing clientSecret');
  assert.not.ok(JSON.stringify(e).includes(CLIENT_SECRET));
});

test.run();
