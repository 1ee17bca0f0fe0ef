// The logger is where secrets are stopped: by field name and by registered value.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger } from '../src/log';
import { CicError } from '../src/errors';
import { registerSecret } from '../src/util/secrets';

function capture(level: 'debug' | 'info' = 'debug') {
  const lines: string[] = [];
  return { lines, log: createLogger({ level, write: (l) => lines.push(l), now: () => 0 }) };
}

test('secret-named fields are redacted; error codes in a code field are kept', () => {
  const { lines, log } = capture();
  log.info('x', { access_token: 'tok-aaaaaaaa', refreshToken: 'rt-bbbbbbbb', clientSecret: 's3cr3t-value', code: 'auth-code-value', authorization: 'Bearer zzz' });
  log.warn('y', { code: 'H2_PING_TIMEOUT', nested: { code: 'ENOSPC', password: 'pw-123456' } });
  const a = JSON.parse(lines[0]!);
  for (const k of ['access_token', 'refreshToken', 'clientSecret', 'code', 'authorization']) assert.is(a[k], '[redacted]', k);
  const b = JSON.parse(lines[1]!);
  assert.is(b.code, 'H2_PING_TIMEOUT');
  assert.is(b.nested.code, 'ENOSPC');
  assert.is(b.nested.password, '[redacted]');
});

test('registered secret values are scrubbed from messages, strings, errors and stacks', () => {
  const secret = 'value-registered-77f1c2';
  registerSecret(secret);
  const { lines, log } = capture();
  const err = new CicError('AUTH_SERVER', `server echoed ${secret}`);
  log.error(`message with ${secret}`, { detail: `a ${secret} b`, url: `https://h/x?t=${encodeURIComponent(secret)}`, err, list: [secret] });
  assert.is(lines.length, 1);
  assert.not.ok(lines[0]!.includes(secret));
  assert.ok(lines[0]!.includes('[redacted]'));
  assert.not.ok(err.message.includes(secret), 'CicError scrubs its own message');
});

test('levels filter, and silent writes nothing', () => {
  const { lines, log } = capture('info');
  log.debug('hidden');
  log.info('shown');
  assert.is(lines.length, 1);
  const silent: string[] = [];
  createLogger({ level: 'silent', write: (l) => silent.push(l) }).error('nothing');
  assert.is(silent.length, 0);
});

test.run();
