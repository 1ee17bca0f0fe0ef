// Maps socket and TLS failures during connect to stable codes. A certificate that is not yet
// valid almost always means the device clock was never set (no RTC, no NTP yet): that gets
// its own code so the caller can wait for the clock instead of looping on retries.
import { CicError, type ErrorCode } from '../errors';

const TLS_CODES: Record<string, ErrorCode> = {
  ERR_TLS_CERT_ALTNAME_INVALID: 'H2_TLS_HOSTNAME',
  CERT_NOT_YET_VALID: 'H2_TLS_CLOCK',
  CERT_HAS_EXPIRED: 'H2_TLS_EXPIRED',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'H2_TLS_CERT',
  SELF_SIGNED_CERT_IN_CHAIN: 'H2_TLS_CERT',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'H2_TLS_CERT',
  UNABLE_TO_GET_ISSUER_CERT: 'H2_TLS_CERT',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'H2_TLS_CERT',
  CERT_SIGNATURE_FAILURE: 'H2_TLS_CERT',
  CERT_UNTRUSTED: 'H2_TLS_CERT',
  CERT_REJECTED: 'H2_TLS_CERT',
  INVALID_CA: 'H2_TLS_CERT',
  CERT_REVOKED: 'H2_TLS_CERT',
  HOSTNAME_MISMATCH: 'H2_TLS_HOSTNAME',
  // The server speaks ALPN but none of its protocols is h2 (TLS alert 120).
  ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL: 'H2_ALPN',
};

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'EADDRNOTAVAIL', 'ETIMEDOUT']);

export function connectError(err: unknown, target: string): CicError {
  if (err instanceof CicError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : '';
  const mapped = TLS_CODES[code];
  if (mapped === 'H2_TLS_CLOCK') {
    return new CicError(mapped, `${target}: certificate is not yet valid — the device clock is probably not set (now ${new Date().toISOString()})`, {
      cause: err,
      details: { tlsCode: code },
    });
  }
  if (mapped) return new CicError(mapped, `${target}: ${e.message}`, { cause: err, details: { tlsCode: code } });
  if (CONNECT_CODES.has(code)) return new CicError('H2_CONNECT_FAILED', `${target}: ${e.message}`, { cause: err, details: { errno: code } });
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || /SSL|TLS/.test(e?.message ?? '')) {
    return new CicError('H2_TLS_FAILED', `${target}: ${e?.message ?? String(err)}`, { cause: err, details: { tlsCode: code } });
  }
  return new CicError('H2_CONNECT_FAILED', `${target}: ${e?.message ?? String(err)}`, { cause: err, details: { errno: code || undefined } });
}
