// Maps an unsuccessful auth-server answer (HTTP status + RFC 6749 §5.2 error payload) to a
// CicError with a stable code. The payload's `error` / `error_description` / `error_uri`
// go into details (bounded in length, description redacted); the body is never quoted whole.
//
//   error=invalid_grant                  → AUTH_INVALID_GRANT   the grant is dead: pair again
//   error=invalid_client                 → AUTH_INVALID_CLIENT  wrong client id/secret
//   401 on /authorize                    → AUTH_UNAUTHORIZED    the account credential was refused
//   5xx, error=server_error|temporarily_unavailable → AUTH_SERVER (transient)
//   408, 429                             → AUTH_INVALID_REQUEST, retryable (honours Retry-After)
//   other 4xx                            → AUTH_INVALID_REQUEST
//   1xx/3xx (redirects are not followed) → AUTH_BAD_RESPONSE, not retryable

import type { IncomingHttpHeaders } from 'node:http';
import { CicError, type ErrorCode } from '../errors';
import { redactText } from '../util/secrets';

export type AuthEndpoint = 'authorize' | 'token' | 'client_credentials';

export interface OAuthErrorDetails {
  status: number;
  endpoint: AuthEndpoint;
  /** RFC 6749 §5.2 `error` (ASCII, at most 64 characters). */
  error?: string;
  /** `error_description`, redacted and cut to 256 characters. */
  error_description?: string;
  error_uri?: string;
  /** From a Retry-After header in seconds, capped (see MAX_RETRY_AFTER_MS). */
  retryAfterMs?: number;
}

const MAX_ERROR_CHARS = 64;
const MAX_DESCRIPTION_CHARS = 256;
const MAX_RETRY_AFTER_MS = 5 * 60_000; // a server asking for more is treated as "later", not obeyed blindly

/** RFC 6749 §5.2: error and error_description are %x20-21 / %x23-5B / %x5D-7E; keep printable ASCII only. */
function cleanText(value: unknown, max: number): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  const printable = value.replace(/[^\x20-\x7e]/g, '?');
  return printable.length > max ? `${printable.slice(0, max)}…` : printable;
}

function parsePayload(body: Buffer | Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (body === undefined) return undefined;
  if (!Buffer.isBuffer(body)) return body;
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function retryAfterMs(headers: IncomingHttpHeaders | undefined): number | undefined {
  const raw = headers?.['retry-after'];
  if (typeof raw !== 'string' || !/^\d{1,7}$/.test(raw.trim())) return undefined; // HTTP-date form ignored
  return Math.min(Number(raw.trim()) * 1000, MAX_RETRY_AFTER_MS);
}

/** Builds the CicError for a non-2xx answer. `body` is the raw body or an already parsed object. */
export function oauthError(
  status: number,
  body: Buffer | Record<string, unknown> | undefined,
  endpoint: AuthEndpoint,
  headers?: IncomingHttpHeaders,
): CicError {
  const payload = parsePayload(body);
  const error = cleanText(payload?.error, MAX_ERROR_CHARS);
  const description = cleanText(payload?.error_description, MAX_DESCRIPTION_CHARS);
  const details: OAuthErrorDetails = { status, endpoint };
  if (error !== undefined) details.error = error;
  if (description !== undefined) details.error_description = redactText(description);
  const uri = cleanText(payload?.error_uri, MAX_DESCRIPTION_CHARS);
  if (uri !== undefined) details.error_uri = redactText(uri);
  const after = retryAfterMs(headers);
  if (after !== undefined) details.retryAfterMs = after;

  let code: ErrorCode;
  let retryable: boolean | undefined;
  if (error === 'invalid_client') code = 'AUTH_INVALID_CLIENT';
  else if (status === 401 && endpoint === 'authorize') code = 'AUTH_UNAUTHORIZED';
  else if (error === 'invalid_grant') code = 'AUTH_INVALID_GRANT';
  else if (status >= 500 || error === 'server_error' || error === 'temporarily_unavailable') code = 'AUTH_SERVER';
  else if (status === 408 || status === 429) {
    code = 'AUTH_INVALID_REQUEST';
    retryable = true;
  } else if (status >= 400) code = 'AUTH_INVALID_REQUEST';
  else {
    code = 'AUTH_BAD_RESPONSE';
    retryable = false;
  }

  const what = endpoint === 'client_credentials' ? 'token (client credentials)' : endpoint;
  const reason = error ? `${error}${description ? `: ${description}` : ''}` : `HTTP ${status}`;
  return new CicError(code, `auth server refused ${what} (HTTP ${status}): ${reason}`, {
    ...(retryable === undefined ? {} : { retryable }),
    details: details as unknown as Record<string, unknown>,
  });
}
