// Generated test PKI (openssl CLI), cached under build/test-certs. Every TLS test trusts only
// this CA through the `ca` option; nothing turns certificate verification off.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface CertPair {
  key: string;
  cert: string;
  keyPath: string;
  certPath: string;
}

export interface TestPki {
  dir: string;
  caPath: string;
  ca: string;
  /** localhost, 127.0.0.1 and ::1, valid now. */
  server: CertPair;
  /** Signed by the CA but for the host name `wrong.invalid` only. */
  wrongHost: CertPair;
  /** Valid for localhost, signed by nobody we trust. */
  selfSigned: CertPair;
  /** Valid for localhost, signed by the CA, expired in 2020. */
  expired: CertPair;
  /** Valid for localhost, signed by the CA, valid only from 2099 on. */
  notYetValid: CertPair;
  /** A second CA nobody trusts, for "not in the configured CA" cases. */
  otherCaPath: string;
}

const SAN_LOCAL = 'DNS:localhost,IP:127.0.0.1,IP:::1';
const VERSION = 'v2'; // bump when the set of certificates changes

/** The project root: $CIC_TEST_ROOT, else the nearest directory above this file with the project's package.json (compiled and bundled copies live at different depths). */
function rootDir(): string {
  if (process.env.CIC_TEST_ROOT) return process.env.CIC_TEST_ROOT;
  for (let dir = __dirname; dirname(dir) !== dir; dir = dirname(dir)) {
    try {
      if (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === 'cic-runtime') return dir;
    } catch {
      /* no package.json here: keep walking up */
    }
  }
  return process.cwd();
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string, cn: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.crt`, '-days', '3650', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

function signLeaf(dir: string, ca: string, name: string, san: string, start: string, end: string): void {
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  // `openssl ca` is the only stock command that takes explicit start and end dates.
  writeFileSync(join(dir, 'ca.cnf'), [
    '[ca]', 'default_ca=local', '[local]', `dir=${dir}`, 'database=$dir/index.txt', 'new_certs_dir=$dir/issued',
    'serial=$dir/serial', 'default_md=sha256', 'policy=any', 'unique_subject=no', 'copy_extensions=none',
    '[any]', 'commonName=supplied', ''].join('\n'));
  openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', `${ca}.crt`, '-keyfile', `${ca}.key`, '-in', `${name}.csr`,
    '-out', `${name}.crt`, '-startdate', start, '-enddate', end, '-extfile', `${name}.ext`, '-notext'], dir);
}

function selfSign(dir: string, name: string): void {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
    '-out', `${name}.crt`, '-days', '3650', '-subj', '/CN=localhost', '-addext', `subjectAltName=${SAN_LOCAL}`], dir);
}

function pair(dir: string, name: string): CertPair {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  return { keyPath, certPath, key: readFileSync(keyPath, 'utf8'), cert: readFileSync(certPath, 'utf8') };
}

let cached: TestPki | undefined;

/** Creates (once per checkout) and returns the test PKI. Safe to call from parallel processes. */
export function testPki(): TestPki {
  if (cached) return cached;
  const dir = join(rootDir(), 'build', 'test-certs', VERSION);
  if (!existsSync(join(dir, 'done'))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(join(tmp, 'issued'), { recursive: true });
    writeFileSync(join(tmp, 'index.txt'), '');
    writeFileSync(join(tmp, 'serial'), '1000\n');
    makeCa(tmp, 'ca', 'cic-runtime test CA');
    makeCa(tmp, 'other-ca', 'untrusted test CA');
    const now = new Date();
    const fmt = (d: Date) => d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
    const start = fmt(new Date(now.getTime() - 86_400_000));
    const end = fmt(new Date(now.getTime() + 3650 * 86_400_000));
    signLeaf(tmp, 'ca', 'server', SAN_LOCAL, start, end);
    signLeaf(tmp, 'ca', 'wrong-host', 'DNS:wrong.invalid', start, end);
    signLeaf(tmp, 'ca', 'expired', SAN_LOCAL, '20200101000000Z', '20200201000000Z');
    signLeaf(tmp, 'ca', 'not-yet-valid', SAN_LOCAL, '20990101000000Z', '20991231000000Z');
    selfSign(tmp, 'self-signed');
    writeFileSync(join(tmp, 'done'), '');
    mkdirSync(join(dir, '..'), { recursive: true });
    try {
      renameSync(tmp, dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another process won the race
    }
  }
  cached = {
    dir,
    caPath: join(dir, 'ca.crt'),
    ca: readFileSync(join(dir, 'ca.crt'), 'utf8'),
    server: pair(dir, 'server'),
    wrongHost: pair(dir, 'wrong-host'),
    selfSigned: pair(dir, 'self-signed'),
    expired: pair(dir, 'expired'),
    notYetValid: pair(dir, 'not-yet-valid'),
    otherCaPath: join(dir, 'other-ca.crt'),
  };
  return cached;
}
