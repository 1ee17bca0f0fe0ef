// The terms page's redirect: clova://agreement-success, clova://agreement-failure?error=…,
// and everything else refused without being quoted back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_REASON_LENGTH, parseAgreementRedirect, sanitizeReason } from '../src/auth/agreement';
import { isCicError } from '../src/errors';

function refused(location: string, why: RegExp): void {
  try {
    parseAgreementRedirect(location);
  } catch (e) {
    assert.ok(isCicError(e, 'ERR_INVALID_ARGUMENT'), `${location}: ${String(e)}`);
    assert.match((e as Error).message, /^not an agreement redirect/);
    assert.match((e as Error).message, why, location);
    return;
  }
  assert.unreachable(`${JSON.stringify(location)} was accepted`);
}

function failure(location: string): { reason: string; message: string } {
  const r = parseAgreementRedirect(location);
  if (r.ok) throw new Error(`${location} read as success`);
  assert.ok(isCicError(r.error, 'AUTH_TERMS_DECLINED'));
  assert.is(r.error.retryable, false);
  assert.equal(r.error.details, { reason: r.reason });
  return { reason: r.reason, message: r.error.message };
}

test('success', () => {
  assert.equal(parseAgreementRedirect('clova://agreement-success'), { ok: true });
  assert.equal(parseAgreementRedirect('clova://agreement-success/'), { ok: true });
  // Schemes and hosts are case-insensitive (RFC 3986); a pasted value may carry a newline.
  assert.equal(parseAgreementRedirect('CLOVA://Agreement-Success'), { ok: true });
  assert.equal(parseAgreementRedirect('  clova://agreement-success\n'), { ok: true });
});

test('failure carries the reason and a stable code', () => {
  const f = failure('clova://agreement-failure?error=user_denied');
  assert.is(f.reason, 'user_denied');
  assert.ok(f.message.includes('user_denied'));
  assert.is(failure('clova://agreement-failure/?error=server_error&state=xyz').reason, 'server_error');
  assert.is(failure('clova://agreement-failure').reason, 'unspecified');
  assert.is(failure('clova://agreement-failure?error=').reason, 'unspecified');
});

test('a percent-encoded reason is decoded, then reduced to printable ASCII', () => {
  assert.is(failure('clova://agreement-failure?error=server%20error%3A%20try%20later').reason, 'server error: try later');
  assert.is(failure('clova://agreement-failure?error=a+b').reason, 'a b');
  assert.is(failure('clova://agreement-failure?error=%E5%90%8C%E6%84%8F').reason, '??');
  assert.is(failure('clova://agreement-failure?error=line%0Abreak%1B%5B31m').reason, 'line?break?[31m');
  const long = failure(`clova://agreement-failure?error=${'x'.repeat(500)}`).reason;
  assert.is(long, `${'x'.repeat(MAX_REASON_LENGTH)}…`);
  assert.is(sanitizeReason('  spaced \t out  '), 'spaced ? out');
  assert.is(sanitizeReason(undefined), 'unspecified');
});

test('wrong scheme', () => {
  refused('https://agreement-success', /scheme is https:/);
  refused('clovax://agreement-success', /scheme is clovax:/);
  refused('agreement-success', /not a URL/);
  refused('', /not a URL/);
});

test('wrong host', () => {
  refused('clova://agreement-succes', /neither/);
  refused('clova://agreement-success.example.com', /neither/);
  refused('clova://agreement', /neither/);
  refused('clova:agreement-success', /path/);
  refused('clova:///agreement-success', /path/);
});

test('extra junk is refused, not ignored', () => {
  refused('clova://agreement-success?error=x', /query/);
  refused('clova://agreement-success#done', /fragment/);
  refused('clova://agreement-success/more', /path/);
  refused('clova://agreement-success:443', /user or port/);
  refused('clova://agreement-success@evil.example', /user or port/);
  refused('clova://agreement-success extra', /spaces or control/);
  refused('clova://agree\tment-success', /spaces or control/);
  refused('clova://agree\nment-success', /spaces or control/);
  refused(`clova://agreement-failure?error=${'x'.repeat(5000)}`, /longer than/);
});

test('a refused value is never quoted back (it may be the terms URL with its code)', () => {
  const code = 'code-Zx81pQ0vLm';
  try {
    parseAgreementRedirect(`https://terms.example/page?code=${code}&grant_type=code`);
    assert.unreachable();
  } catch (e) {
    assert.not.ok(JSON.stringify(e).includes(code));
    assert.not.ok((e as Error).message.includes('terms.example'));
  }
});

test.run();
