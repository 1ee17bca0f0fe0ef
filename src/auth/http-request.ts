// A small HTTP/1.1 client for the auth servers (node:https, node:http for loopback tests).
//
// Why not fetch(): Node 18's fetch (undici) cannot take an extra CA per request without a
// dispatcher from the undici package, and its timeouts run on real timers; the auth path
// needs both a configurable trust anchor and deadlines on the injected clock.
//
// Guarantees:
// - One deadline covers the whole exchange (DNS, connect, TLS, request, headers, body): a
//   server that trickles one byte a minute cannot hold the caller past `timeoutMs`.
// - The response body is bounded (`maxResponseBytes`): a captive portal answering with a
//   megabyte of HTML is refused, not buffered.
// - Failures are CicErrors: AUTH_NETWORK (connect/TLS/reset), AUTH_TIMEOUT, AUTH_BAD_RESPONSE
//   (too large; JSON that does not parse); ERR_CLOSED when the caller aborted.
// - Certificate verification is always on. `caPem` adds one trust anchor to the bundled
//   roots (Node's `ca` option alone would replace them).
// - No connection reuse (`agent: false`): the auth server is contacted a few times a day,
//   and a pooled socket would outlive the request on a device that counts file descriptors.

import { X509Certificate } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { CicError } from '../errors';
import { systemClock, type Clock } from '../util/clock';
import { describeUrl } from './url';

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024; // a token answer is < 2 KB; 32× headroom

export interface HttpRequestOptions {
  method: 'GET' | 'POST';
  url: URL;
  headers?: Record<string, string>;
  /** Sent as an application/x-www-form-urlencoded body; undefined values are left out. */
  form?: Record<string, string | undefined>;
  /** Deadline for the whole exchange, ms (on `clock`). */
  timeoutMs: number;
  clock?: Clock;
  /** An extra trusted CA certificate (PEM), added to the bundled roots. */
  caPem?: string;
  maxResponseBytes?: number;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** The rejection for an aborted operation: the caller's reason when it is a CicError, else ERR_CLOSED. */
export function abortError(signal: AbortSignal): CicError {
  const reason: unknown = signal.reason;
  if (reason instanceof CicError) return reason;
  return new CicError('ERR_CLOSED', 'the request was aborted', { cause: reason });
}

// Secure contexts are costly to build (the bundled roots are ~140 certificates); a device
// uses one or two CA files for its lifetime.
const contexts = new Map<string, tls.SecureContext>();
const MAX_CONTEXTS = 4;

function secureContextFor(caPem: string): tls.SecureContext {
  let ctx = contexts.get(caPem);
  if (!ctx) {
    // OpenSSL skips `ca` entries it cannot parse without a word: a broken CA file would
    // surface later as "unable to verify" on every request. Check each block up front.
    const blocks = caPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    try {
      if (blocks.length === 0) throw new Error('no PEM certificate block');
      for (const b of blocks) new X509Certificate(b);
      ctx = tls.createSecureContext({ ca: [...tls.rootCertificates, ...blocks] });
    } catch (e) {
      throw new CicError('ERR_INVALID_ARGUMENT', 'the configured CA certificate is not valid PEM', { cause: e });
    }
    if (contexts.size >= MAX_CONTEXTS) contexts.delete(contexts.keys().next().value as string);
    contexts.set(caPem, ctx);
  }
  return ctx;
}

// Certificate failures are configuration or clock problems, not a flaky network: retrying
// them quickly only burns battery. A certificate "not yet valid" is the exception — it is
// what an unset clock at boot looks like, and it heals when NTP runs.
const CERT_CODES = new Set([
  'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'INVALID_CA', 'CERT_REVOKED', 'HOSTNAME_MISMATCH',
]);

/** Maps a socket/TLS failure to AUTH_NETWORK with the reason in details. */
export function networkError(err: unknown, target: string): CicError {
  if (err instanceof CicError) return err;
  const e = err as NodeJS.ErrnoException;
  const reason = typeof e?.code === 'string' ? e.code : undefined;
  const text = `${target}: ${e?.message ?? String(err)}`;
  if (reason === 'CERT_NOT_YET_VALID') {
    return new CicError('AUTH_NETWORK', `${target}: the server certificate is not yet valid — is the device clock set?`, {
      cause: err,
      details: { reason, tls: true },
    });
  }
  if (reason && CERT_CODES.has(reason)) return new CicError('AUTH_NETWORK', text, { cause: err, retryable: false, details: { reason, tls: true } });
  return new CicError('AUTH_NETWORK', text, { cause: err, details: reason ? { reason } : undefined });
}

function encodeForm(form: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) if (v !== undefined) params.append(k, v);
  return params.toString();
}

/** Performs one request; resolves with any HTTP status (status mapping is the caller's job). */
export function httpRequest(options: HttpRequestOptions): Promise<HttpResponse> {
  const { method, url, signal } = options;
  const clock = options.clock ?? systemClock;
  const maxBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const target = `${method} ${describeUrl(url)}`;
  if (signal?.aborted) return Promise.reject(abortError(signal));
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    return Promise.reject(new CicError('ERR_INVALID_ARGUMENT', `unsupported URL scheme ${url.protocol}`));
  }
  if (!(options.timeoutMs > 0)) return Promise.reject(new CicError('ERR_INVALID_ARGUMENT', 'timeoutMs must be positive'));

  const body = options.form ? Buffer.from(encodeForm(options.form)) : undefined;
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (body) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    headers['content-length'] = String(body.length);
  }

  let secureContext: tls.SecureContext | undefined;
  try {
    if (url.protocol === 'https:' && options.caPem) secureContext = secureContextFor(options.caPem);
  } catch (e) {
    return Promise.reject(e);
  }

  return new Promise<HttpResponse>((resolve, reject) => {
    let settled = false;
    let req: http.ClientRequest | undefined;
    const finish = (err: CicError | undefined, res?: HttpResponse) => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        req?.destroy();
        reject(err);
      } else {
        resolve(res!);
      }
    };
    const onAbort = () => finish(abortError(signal!));
    const timer = clock.setTimeout(
      () => finish(new CicError('AUTH_TIMEOUT', `${target}: no complete answer within ${options.timeoutMs} ms`, { details: { timeoutMs: options.timeoutMs } })),
      options.timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });

    const requestOptions: https.RequestOptions & { secureContext?: tls.SecureContext } = {
      method,
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      headers,
      agent: false,
      // Explicit: left unset, NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment would turn
      // verification off and send credentials to any server.
      rejectUnauthorized: true,
    };
    if (secureContext) requestOptions.secureContext = secureContext;

    try {
      req = (url.protocol === 'https:' ? https : http).request(requestOptions);
    } catch (e) {
      finish(networkError(e, target));
      return;
    }
    req.on('error', (e) => finish(networkError(e, target)));
    req.on('response', (res) => {
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        finish(new CicError('AUTH_BAD_RESPONSE', `${target}: response of ${declared} bytes exceeds the ${maxBytes}-byte limit`, { details: { status: res.statusCode, limit: maxBytes } }));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) {
          finish(new CicError('AUTH_BAD_RESPONSE', `${target}: response exceeds the ${maxBytes}-byte limit`, { details: { status: res.statusCode, limit: maxBytes } }));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (e) => finish(networkError(e, target)));
      res.on('close', () => {
        if (!res.complete) finish(new CicError('AUTH_NETWORK', `${target}: the connection closed before the response was complete`));
      });
    });
    req.end(body);
  });
}

/** Parses a JSON object body; anything else is AUTH_BAD_RESPONSE (the body itself is never quoted). */
export function parseJsonObject(res: HttpResponse, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(res.body.toString('utf8'));
  } catch {
    throw new CicError('AUTH_BAD_RESPONSE', `${what}: the body is not JSON`, { details: { status: res.status, bytes: res.body.length } });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CicError('AUTH_BAD_RESPONSE', `${what}: the body is not a JSON object`, { details: { status: res.status } });
  }
  return value as Record<string, unknown>;
}
