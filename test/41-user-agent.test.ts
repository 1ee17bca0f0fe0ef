import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildUserAgent, validateUserAgent } from '../src/cic/user-agent';

test('the published examples validate', () => {
  for (const ua of [
    'MyCompanyName/MyProductName/1.0.1 (KindOfOS 0.9;CustomHardwareInfo;sampleKey1=sampleValue1)',
    'Vendor/Client/0.8.2+build (Linux 7.0;Raspberry_pi;domain=Sample%40Clova;type=Test%20Type)',
    'Acme/Speaker/2.0.0-rc.1+sha.5114f85 (Linux 6.1;armv7l)',
  ]) {
    const r = validateUserAgent(ua);
    assert.ok(r.ok, `${ua}: ${r.ok ? '' : r.reason}`);
  }
  const r = validateUserAgent('Vendor/Client/0.8.2+build (Linux 7.0;Raspberry_pi;domain=Sample%40Clova)');
  assert.ok(r.ok && r.parts.firmware === '0.8.2+build' && r.parts.extra.domain === 'Sample%40Clova');
});

test('every rejection class names its reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['', /non-empty/],
    ['Vendor/Client/1.0.0', /must look like/],
    ['Vendor/Client (Linux;hw)', /Manufacturer\/Product\/FirmwareVersion/],
    ['Ven dor/Client/1.0.0 (Linux;hw)', /must look like/],
    ['Vendor/Cli ent/1.0.0 (Linux;hw)', /must look like/],
    ['Vendor/Client/1.0 (Linux;hw)', /SemVer/],
    ['Vendor/Client/01.0.0 (Linux;hw)', /SemVer/],
    ['Vendor/Client/1.0.0 (Linux)', /OS_Info;HW_Info/],
    ['Vendor/Client/1.0.0 (;hw)', /OS info/],
    ['Vendor/Client/1.0.0 (Linux;)', /hardware info/],
    ['Vendor/Client/1.0.0 (Linux;hw;novalue)', /key=urlencoded_value/],
    ['Vendor/Client/1.0.0 (Linux;hw;k=a b)', /not URL-encoded/],
    ['Vendor/Client/1.0.0 (Linux;hw;k=100%)', /not URL-encoded/],
    ['Vendor/Client/1.0.0 (Linux;hw;k=a;b)', /key=urlencoded_value/],
    ['Vendor/Client/1.0.0 (Linux (x);hw)', /parentheses/],
    ['Vendor/Client/1.0.0 (Linux;hw)\r\nX: y', /printable ASCII/],
    ['Vendor/Clïent/1.0.0 (Linux;hw)', /printable ASCII/],
    ['A/B/C/1.0.0 (Linux;hw)', /Manufacturer\/Product\/FirmwareVersion/],
  ];
  for (const [ua, why] of cases) {
    const r = validateUserAgent(ua);
    assert.not.ok(r.ok, `accepted: ${JSON.stringify(ua)}`);
    if (!r.ok) assert.match(r.reason, why, JSON.stringify(ua));
  }
});

test('buildUserAgent URL-encodes extra values and validates the result', () => {
  const ua = buildUserAgent({ manufacturer: 'Vendor', product: 'Client', firmware: '0.8.2', os: 'Linux 7.0', hardware: 'Raspberry_pi', extra: { domain: 'Sample@Clova', type: 'Test Type' } });
  assert.is(ua, 'Vendor/Client/0.8.2 (Linux 7.0;Raspberry_pi;domain=Sample%40Clova;type=Test%20Type)');
  assert.throws(() => buildUserAgent({ manufacturer: 'V', product: 'C', firmware: '1', os: 'L', hardware: 'h' }));
});

test.run();
