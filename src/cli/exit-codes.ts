// Exit codes of the command line (a contract).
import { isCicError, type ErrorCode } from '../errors';

export const EXIT = {
  OK: 0,
  RUNTIME: 1, // runtime error (network, server, disk …)
  USAGE: 2, // usage or configuration error
  NOT_LOGGED_IN: 3, // not logged in, or the grant is dead (invalid_grant): pair again
  TERMS: 4, // the user must agree to the terms first, or declined them
} as const;

// CIC's own 401 is not here: the client refreshes and keeps trying (src/cic/unauthorized.ts);
// only the auth server's invalid_grant or a missing token file means the device must pair again.
const NOT_LOGGED_IN: ReadonlySet<ErrorCode> = new Set(['AUTH_NOT_LOGGED_IN', 'AUTH_INVALID_GRANT']);
const USAGE: ReadonlySet<ErrorCode> = new Set(['USAGE', 'CONFIG_INVALID', 'CONFIG_UNREADABLE', 'ERR_INVALID_ARGUMENT', 'AUTH_INVALID_CLIENT', 'STORE_PERMISSIONS', 'STORE_KEY', 'SOCKET_PATH_IN_USE', 'SOCKET_PATH_INVALID']);

export function exitCodeFor(err: unknown): number {
  if (!isCicError(err)) return EXIT.RUNTIME;
  if (err.code === 'AUTH_TERMS_REQUIRED' || err.code === 'AUTH_TERMS_DECLINED') return EXIT.TERMS;
  if (NOT_LOGGED_IN.has(err.code)) return EXIT.NOT_LOGGED_IN;
  if (USAGE.has(err.code)) return EXIT.USAGE;
  return EXIT.RUNTIME;
}
