// Base-URL handling for the auth servers.
//
// Hazard: the published Clova docs disagree about the trailing slash (`{{base}}/authorize`
// in one version, `{{base}}authorize` in another), and `new URL('authorize', base)` silently
// drops the last path segment of a base without a trailing slash (`https://h/api/auth` +
// `token` → `https://h/api/token`). So paths are joined by hand: the base path prefix is
// always kept, and exactly one slash separates it from the endpoint whatever either side has.

import { CicError } from '../errors';

export interface BaseUrlOptions {
  /**
   * Allow plain `http:`. Off by default: the client secret and tokens travel in the body.
   * Only for a loopback test server or a TLS-terminating local proxy.
   */
  allowHttp?: boolean;
}

/** Parses and checks a configured base URL: https (or http when allowed), no credentials, query or fragment. */
export function parseBaseUrl(base: string | URL, what = 'auth URL', options: BaseUrlOptions = {}): URL {
  let url: URL;
  try {
    url = new URL(String(base));
  } catch {
    throw new CicError('ERR_INVALID_ARGUMENT', `${what} is not a valid URL`, { details: { what } });
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && options.allowHttp)) {
    throw new CicError('ERR_INVALID_ARGUMENT', `${what} must use https (got ${url.protocol})`, { details: { what, protocol: url.protocol } });
  }
  // user:pass@ would end up in logs and Host-less proxies; a query or fragment cannot be
  // combined with endpoint paths unambiguously.
  if (url.username || url.password) throw new CicError('ERR_INVALID_ARGUMENT', `${what} must not contain credentials`, { details: { what } });
  if (url.search || url.hash) throw new CicError('ERR_INVALID_ARGUMENT', `${what} must not contain a query or fragment`, { details: { what } });
  return url;
}

/**
 * Joins `path` onto `base`, keeping the base's path prefix: the result is the same with or
 * without a trailing slash on the base and a leading slash on the path.
 *
 *   joinUrl('https://h/api/auth',  'token')  → https://h/api/auth/token
 *   joinUrl('https://h/api/auth/', '/token') → https://h/api/auth/token
 *   joinUrl('https://h',           'token')  → https://h/token
 */
export function joinUrl(base: string | URL, path: string, query?: Record<string, string | undefined>): URL {
  const url = new URL(String(base));
  url.search = '';
  url.hash = '';
  const prefix = url.pathname.replace(/\/+$/, '');
  const rel = path.replace(/^\/+/, '');
  url.pathname = rel === '' ? prefix || '/' : `${prefix}/${rel}`;
  if (query) {
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, v);
  }
  return url;
}

/** The origin and path of a URL without its query (for logs: queries may carry parameters). */
export function describeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}
