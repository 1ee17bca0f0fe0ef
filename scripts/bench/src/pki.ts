// The TLS identity of the local bench server. A throwaway CA and a 127.0.0.1/::1/localhost
// server certificate are generated when the bench bundle is built (scripts/bench/bundle.mjs,
// openssl) and embedded, so the bundle runs on a device that has no openssl; --cert/--key/--ca
// replace them. The key protects nothing but loopback benchmark traffic.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

declare const __BENCH_PKI__: { ca: string; cert: string; key: string } | undefined;

export interface BenchPki {
  ca: string;
  cert: string | undefined;
  key: string | undefined;
  /** A file holding `ca` (clients are given a path, as a device configuration would). */
  caFile: string;
  certFile: string | undefined;
  keyFile: string | undefined;
  source: string;
}

export function benchPki(o: { caFile?: string; certFile?: string; keyFile?: string }, tmpDir: string): BenchPki {
  const embedded = typeof __BENCH_PKI__ === 'object' ? __BENCH_PKI__ : undefined;
  const ca = o.caFile ? readFileSync(o.caFile, 'utf8') : embedded?.ca;
  const cert = o.certFile ? readFileSync(o.certFile, 'utf8') : o.caFile ? undefined : embedded?.cert;
  const key = o.keyFile ? readFileSync(o.keyFile, 'utf8') : o.caFile ? undefined : embedded?.key;
  if (!ca) throw new Error('no CA: this bundle was built without an embedded bench PKI (no openssl at build time); pass --ca FILE (and --cert/--key for the local server)');
  const write = (name: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    const p = join(tmpDir, name);
    writeFileSync(p, text, { mode: 0o600 });
    return p;
  };
  return {
    ca,
    cert,
    key,
    caFile: write('ca.crt', ca)!,
    certFile: write('server.crt', cert),
    keyFile: write('server.key', key),
    source: o.caFile ? `files (${o.caFile})` : 'embedded at bundle time',
  };
}
