// CIC HTTP status → coded error. Unknown statuses get a generic code, never a crash.
import { CicError } from '../errors';

export function statusError(status: number, what: string, details: Record<string, unknown> = {}): CicError {
  const d = { status, ...details };
  switch (status) {
    case 400:
      return new CicError('CIC_BAD_REQUEST', `${what}: CIC answered 400 (malformed request)`, { details: d });
    case 401:
      return new CicError('CIC_UNAUTHORIZED', `${what}: CIC refused the access token (401)`, { details: d });
    case 412:
      return new CicError('CIC_NO_DOWNCHANNEL', `${what}: CIC has no downchannel on this connection (412)`, { details: d });
    case 429:
      return new CicError('CIC_TOO_MANY_REQUESTS', `${what}: CIC answered 429 (too many downchannel requests)`, { details: d });
    default:
      if (status >= 500) return new CicError('CIC_SERVER', `${what}: CIC answered ${status}`, { details: d });
      return new CicError('CIC_HTTP_STATUS', `${what}: CIC answered ${status}`, { details: d });
  }
}
