// A server certificate for one IP address, signed by the test CA (test/support/certs.ts), for
// servers that listen on an address the shared PKI does not name (a network namespace's
// link-local address). Issued into a private temporary directory; verification stays on.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPki, type CertPair } from '../../support/certs';

export interface IpCert extends CertPair {
  remove(): void;
}

export function issueIpCert(ip: string): IpCert {
  const pki = testPki();
  const dir = mkdtempSync(join(tmpdir(), 'cic-ipcert-'));
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${ip}`]);
  writeFileSync(join(dir, 'server.ext'), `subjectAltName=IP:${ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  const serial = `0x${Date.now().toString(16)}${process.pid.toString(16)}`;
  run(['x509', '-req', '-in', 'server.csr', '-CA', join(pki.dir, 'ca.crt'), '-CAkey', join(pki.dir, 'ca.key'), '-set_serial', serial,
    '-days', '2', '-sha256', '-extfile', 'server.ext', '-out', 'server.crt']);
  const keyPath = join(dir, 'server.key');
  const certPath = join(dir, 'server.crt');
  return {
    keyPath,
    certPath,
    key: readFileSync(keyPath, 'utf8'),
    cert: readFileSync(certPath, 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
