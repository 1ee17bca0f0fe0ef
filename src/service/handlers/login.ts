// `login` {code} or {accountToken} → `logged-in` {deviceId, expiresAt}, `terms` {uri, code}, or
// `error` {code, text}. The secret is registered with the redactor before anything can quote it;
// no answer carries a token (`terms` carries the one-time authorization code the terms page
// needs back, exactly as `cic-runtime login` prints it).
import { CicError, isCicError } from '../../errors';
import { registerSecret } from '../../util/secrets';
import type { LoginRequest } from '../port';
import type { Handler } from './context';
import { bad, onlyFields } from './fields';

const MAX_SECRET_CHARS = 4096;

function secret(data: Record<string, unknown>, key: string): string | undefined {
  const v = data[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_SECRET_CHARS || /[\x00-\x20\x7f]/.test(v)) {
    throw bad('login', `"${key}" must be one word of 1-${MAX_SECRET_CHARS} printable characters`);
  }
  registerSecret(v);
  return v;
}

export const login: Handler = (frame, { session, runtime }) => {
  onlyFields('login', frame.data, ['code', 'accountToken']);
  const code = secret(frame.data, 'code');
  const accountToken = secret(frame.data, 'accountToken');
  if ((code === undefined) === (accountToken === undefined)) throw bad('login', 'give exactly one of "code" and "accountToken"');
  const request: LoginRequest = code !== undefined ? { code } : { accountToken: accountToken! };
  session.log.info('login requested over the device socket', { with: code !== undefined ? 'code' : 'accountToken' });
  runtime.login(request).then(
    (r) => {
      if (r.kind === 'terms') session.send('terms', { uri: r.uri, code: r.code });
      else session.send('logged-in', { deviceId: r.deviceId, expiresAt: r.expiresAt });
    },
    (e: unknown) => {
      const err = isCicError(e) ? e : new CicError('ERR_INTERNAL', 'login failed');
      session.log.warn('login over the device socket failed', { code: err.code, text: err.message });
      session.send('error', { code: err.code, text: err.message });
    },
  );
};
