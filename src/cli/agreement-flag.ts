// `login --agreement-redirect URL`: the terms page's redirect, checked before any secret is
// read or request sent, so that a mistyped value is a usage error (exit 2).
import { CicError, isCicError } from '../errors';
import { parseAgreementRedirect, type AgreementOutcome } from '../auth/agreement';

export function readAgreementFlag(value: string | undefined): AgreementOutcome | undefined {
  if (value === undefined) return undefined;
  try {
    return parseAgreementRedirect(value);
  } catch (e) {
    if (isCicError(e, 'ERR_INVALID_ARGUMENT')) throw new CicError('USAGE', `--agreement-redirect: ${e.message}`);
    throw e;
  }
}
