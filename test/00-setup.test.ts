import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { X509Certificate } from 'node:crypto';
import { testPki } from './support/certs';

test('test PKI: server certificate is signed by the test CA and names loopback', () => {
  const pki = testPki();
  const ca = new X509Certificate(pki.ca);
  const server = new X509Certificate(pki.server.cert);
  assert.ok(server.verify(ca.publicKey));
  assert.ok(server.checkIP('127.0.0.1'));
  assert.ok(server.checkHost('localhost'));
  assert.not.ok(new X509Certificate(pki.wrongHost.cert).checkHost('localhost'));
  assert.ok(new Date(new X509Certificate(pki.expired.cert).validTo) < new Date());
  assert.ok(new Date(new X509Certificate(pki.notYetValid.cert).validFrom) > new Date());
});

test.run();
