// User-Agent grammar (PROTOCOL.md §3): the published examples pass, every rejection class is
// refused with a reason that names the offending piece, and the builder cannot produce a
// string that parses into something else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildUserAgent, parseUserAgent, validateUserAgent } from '../src/cic/user-agent';
import { isCicError } from '../src/errors';

const EXAMPLE_1 = 'MyCompanyName/MyProductName/1.0.1 (KindOfOS 0.9;CustomHardwareInfo;sampleKey1=sampleValue1)';
const EXAMPLE_2 = 'Vendor/Client/0.8.2+build (Linux 7.0;Raspberry_pi;domain=Sample%40Clova;type=Test%20Type)';

test('both published examples validate, with their parts', () => {
  const a = validateUserAgent(EXAMPLE_1);
  assert.ok(a.ok, a.ok ? '' : a.reason);
  if (a.ok) {
    assert.equal({ ...a.parts, extra: { ...a.parts.extra } }, {
      manufacturer: 'MyCompanyName',
      product: 'MyProductName',
      firmware: '1.0.1',
      os: 'KindOfOS 0.9',
      hardware: 'CustomHardwareInfo',
      extra: { sampleKey1: 'sampleValue1' },
    });
  }
  const b = parseUserAgent(EXAMPLE_2);
  assert.is(b.manufacturer, 'Vendor');
  assert.is(b.product, 'Client');
  assert.is(b.firmware, '0.8.2+build');
  assert.is(b.os, 'Linux 7.0');
  assert.is(b.hardware, 'Raspberry_pi');
  assert.equal(Object.entries(b.extra), [['domain', 'Sample@Clova'], ['type', 'Test Type']]);
});

test('other valid shapes: no extras, SemVer pre-release and build, token characters', () => {
  for (const ua of [
    'Acme/Speaker/2.0.0 (Linux 6.1;armv7l)',
    'Acme/Speaker/2.0.0-rc.1+sha.5114f85 (Linux 6.1;armv7l)',
    'Acme/Speaker/1.0.0-0.3.7 (Linux;hw)',
    'Acme/Speaker/1.0.0-x-y-z.--+b.-- (Linux;hw)',
    'Acme/Speaker/10.20.30 (Linux;hw)',
    'Acme_Corp/Smart-Speaker.v2/0.0.0 (Buildroot 2024.02/arm;Board rev B;mac=aa:bb:cc;url=https://x/y?z)',
    'A/B/1.0.0 (O;H;k=a+b;k2=%E2%9C%93)',
  ]) {
    const r = validateUserAgent(ua);
    assert.ok(r.ok, `${ua}: ${r.ok ? '' : r.reason}`);
  }
  assert.is(parseUserAgent('A/B/1.0.0 (O;H;k2=%E2%9C%93)').extra.k2, '✓');
});

test('every rejection class is refused, and the reason names the piece', () => {
  const cases: Array<[unknown, RegExp]> = [
    // whole string
    ['', /non-empty/],
    [42, /non-empty string/],
    [`A/B/1.0.0 (L;${'h'.repeat(600)})`, /longer than 512/],
    ['Vendor/Client/1.0.0 (Linux;hw)\r\nX-Injected: y', /control character at position 30/],
    ['Vendor/Client/1.0.0 (Linux;h\tw)', /control character/],
    ['Vendor/Client/1.0.0 (Linux;hw\x7f)', /control character/],
    ['Vendor/Clïent/1.0.0 (Linux;hw)', /non-ASCII character at position 9/],
    // parentheses
    ['Vendor/Client/1.0.0', /missing the "\(OS_Info;HW_Info\)" comment/],
    ['Vendor/Client/1.0.0 (Linux;hw', /unbalanced parentheses/],
    ['Vendor/Client/1.0.0 Linux;hw)', /unbalanced parentheses/],
    ['Vendor/Client/1.0.0 )Linux;hw(', /unbalanced parentheses/],
    ['Vendor/Client/1.0.0 (Linux (x);hw)', /nested or repeated parentheses/],
    ['Vendor/Client/1.0.0 (Linux;hw) (more;x)', /nested or repeated parentheses/],
    ['Vendor/Client/1.0.0 (Linux;hw) trailing', /text after the closing parenthesis/],
    ['Vendor/Client/1.0.0(Linux;hw)', /exactly one space/],
    ['Vendor/Client/1.0.0  (Linux;hw)', /exactly one space/],
    // Manufacturer/Product/Firmware
    ['Vendor/Client (Linux;hw)', /"Vendor\/Client" must be Manufacturer\/Product\/FirmwareVersion/],
    ['A/B/C/1.0.0 (Linux;hw)', /"\/" is not allowed inside the manufacturer or product/],
    ['/Client/1.0.0 (Linux;hw)', /manufacturer is empty/],
    ['Vendor//1.0.0 (Linux;hw)', /product is empty/],
    ['Vendor/Client/ (Linux;hw)', /firmware version is empty/],
    ['Ven dor/Client/1.0.0 (Linux;hw)', /manufacturer "Ven dor" must not contain spaces/],
    ['Vendor/Cli ent/1.0.0 (Linux;hw)', /product "Cli ent" must not contain spaces/],
    ['Vendor/Cli"ent/1.0.0 (Linux;hw)', /product "Cli"ent" may hold only/],
    ['Vendor/Client/1.0 (Linux;hw)', /firmware version "1.0" is not SemVer/],
    ['Vendor/Client/01.0.0 (Linux;hw)', /firmware version "01.0.0" is not SemVer/],
    ['Vendor/Client/1.00.0 (Linux;hw)', /firmware version .* is not SemVer/],
    ['Vendor/Client/1.0.0-01 (Linux;hw)', /firmware version .* is not SemVer/],
    ['Vendor/Client/1.0.0+ (Linux;hw)', /firmware version .* is not SemVer/],
    ['Vendor/Client/v1.0.0 (Linux;hw)', /firmware version .* is not SemVer/],
    // OS_Info;HW_Info
    ['Vendor/Client/1.0.0 (Linux)', /OS_Info;HW_Info \(hardware info is missing\)/],
    ['Vendor/Client/1.0.0 ()', /OS_Info;HW_Info/],
    ['Vendor/Client/1.0.0 (;hw)', /OS info is empty/],
    ['Vendor/Client/1.0.0 ( ;hw)', /OS info is empty/],
    ['Vendor/Client/1.0.0 (Linux;)', /hardware info is empty/],
    ['Vendor/Client/1.0.0 (Linux ;hw)', /OS info "Linux " has leading or trailing spaces/],
    ['Vendor/Client/1.0.0 (Linux; hw)', /hardware info " hw" has leading or trailing spaces/],
    // key=urlencoded_value
    ['Vendor/Client/1.0.0 (Linux;hw;)', /extra field 1 is empty/],
    ['Vendor/Client/1.0.0 (Linux;hw;a=1;;b=2)', /extra field 2 is empty/],
    ['Vendor/Client/1.0.0 (Linux;hw;novalue)', /"novalue" must be key=urlencoded_value/],
    ['Vendor/Client/1.0.0 (Linux;hw;=x)', /empty key/],
    ['Vendor/Client/1.0.0 (Linux;hw;k y=x)', /key "k y" may hold only/],
    ['Vendor/Client/1.0.0 (Linux;hw;k=)', /value of "k" is empty/],
    ['Vendor/Client/1.0.0 (Linux;hw;k=1;k=2)', /key "k" appears twice/],
    ['Vendor/Client/1.0.0 (Linux;hw;type=Test Type)', /value of "type" is not URL-encoded: raw space/],
    ['Vendor/Client/1.0.0 (Linux;hw;k=a;b)', /extra field "b" must be key=urlencoded_value \(a ";" inside a value must be encoded as %3B\)/],
    ['Vendor/Client/1.0.0 (Linux;hw;k=100%)', /value of "k" is not URL-encoded: "%" must be followed by two hex digits/],
    ['Vendor/Client/1.0.0 (Linux;hw;k=%4)', /"%" must be followed by two hex digits/],
    ['Vendor/Client/1.0.0 (Linux;hw;k=%zz)', /"%" must be followed by two hex digits/],
    ['Vendor/Client/1.0.0 (Linux;hw;k=a=b)', /value of "k" is not URL-encoded: "=" must be percent-encoded/],
    ['Vendor/Client/1.0.0 (Linux;hw;k="x")', /value of "k" is not URL-encoded: """ must be percent-encoded/],
    ['Vendor/Client/1.0.0 (Linux;hw;k=%FF)', /value of "k" is not URL-encoded: its %-escapes are not UTF-8/],
  ];
  for (const [ua, why] of cases) {
    const r = validateUserAgent(ua);
    assert.not.ok(r.ok, `accepted: ${JSON.stringify(ua)}`);
    if (!r.ok) assert.match(r.reason, why, `${JSON.stringify(ua)} → ${r.reason}`);
  }
});

test('a control character is reported by position, never echoed into the reason', () => {
  const r = validateUserAgent('A/B/1.0.0 (L;h)\r\nSet-Cookie: x');
  assert.not.ok(r.ok);
  if (!r.ok) assert.not.ok(/[\r\n]/.test(r.reason));
});

test('a key named __proto__ is a field, not the prototype', () => {
  const p = parseUserAgent('A/B/1.0.0 (L;h;__proto__=x;k=v)');
  assert.equal(Object.keys(p.extra), ['__proto__', 'k']);
  assert.is(Object.getPrototypeOf(p.extra), Object.prototype);
});

test('parseUserAgent throws ERR_INVALID_ARGUMENT with the reason', () => {
  assert.throws(
    () => parseUserAgent('Vendor/Client/1.0 (Linux;hw)'),
    (e: unknown) => isCicError(e, 'ERR_INVALID_ARGUMENT') && /invalid User-Agent: firmware version "1.0"/.test((e as Error).message),
  );
});

test('buildUserAgent URL-encodes extra values and reproduces the published example', () => {
  const ua = buildUserAgent({ manufacturer: 'Vendor', product: 'Client', firmware: '0.8.2+build', os: 'Linux 7.0', hardware: 'Raspberry_pi', extra: { domain: 'Sample@Clova', type: 'Test Type' } });
  assert.is(ua, EXAMPLE_2);
  assert.is(buildUserAgent({ manufacturer: 'A', product: 'B', firmware: '1.0.0', os: 'O', hardware: 'H' }), 'A/B/1.0.0 (O;H)');
});

test('buildUserAgent encodes what encodeURIComponent leaves alone and round-trips', () => {
  const extra = { paren: 'a(b)c', semi: 'x;y', star: "it's*!", eq: 'k=v', pct: '100%', utf: 'Seoul 서울' };
  const ua = buildUserAgent({ manufacturer: 'A', product: 'B', firmware: '1.2.3', os: 'Linux 6.1', hardware: 'rpi4', extra });
  assert.ok(validateUserAgent(ua).ok, ua);
  assert.ok(/^[\x20-\x7e]+$/.test(ua));
  assert.equal({ ...parseUserAgent(ua).extra }, extra);
});

test('buildUserAgent refuses pieces that would change the meaning of the string', () => {
  const base = { manufacturer: 'A', product: 'B', firmware: '1.0.0', os: 'O', hardware: 'H' };
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ firmware: '1' }, /firmware version "1" is not SemVer/],
    [{ manufacturer: 'A/B' }, /manufacturer "A\/B" must not contain "\/"/],
    [{ product: 'My Product' }, /product "My Product" must not contain/],
    [{ product: '' }, /product is empty/],
    [{ os: 'Linux;k=v' }, /OS info "Linux;k=v" must not contain ";"/], // would parse as hardware "k=v"
    [{ hardware: 'rpi (4)' }, /hardware info .* must not contain ";" or parentheses/],
    [{ hardware: 'rpi\n' }, /control character/],
    [{ extra: { 'bad key': 'v' } }, /key "bad key" may hold only/],
    [{ extra: { k: '' } }, /value of "k" is empty/],
  ];
  for (const [patch, why] of cases) {
    assert.throws(
      () => buildUserAgent({ ...base, ...patch } as Parameters<typeof buildUserAgent>[0]),
      (e: unknown) => isCicError(e, 'ERR_INVALID_ARGUMENT') && why.test((e as Error).message),
      JSON.stringify(patch),
    );
  }
});

test.run();
