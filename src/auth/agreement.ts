// The end of the terms step (HTTP 451 on /authorize): once the user submits the terms page,
// the page answers 302 with one of
//
//   clova://agreement-success                    the user agreed; authorize again (or use the
//                                                451 code) and request the token
//   clova://agreement-failure?error=<reason>     the user declined, or the agreement failed
//
// The device (or its companion app) passes that Location on; this module tells the two
// apart. Anything else is refused rather than guessed at: a wrong value here would either
// report a refusal as agreement or the reverse.
//
// Hazards:
// - The WHATWG URL parser silently drops tabs and newlines inside a URL and accepts
//   "clova://agreement-success@elsewhere" as a URL whose host is "elsewhere": the text is
//   screened for control characters and the host compared exactly, with no user, port,
//   path or fragment allowed.
// - The reason is the server's text (possibly percent-encoded): it is decoded, reduced to
//   printable ASCII and bounded before it reaches a message or a log line.
// - A refused value is not quoted back: a user pasting the terms page URL instead of the
//   redirect would otherwise copy its authorization code into the error output.
import { CicError } from '../errors';

export const AGREEMENT_SUCCESS = 'clova://agreement-success';
export const AGREEMENT_FAILURE = 'clova://agreement-failure';

/** Longest reason kept (characters); the rest is cut with an ellipsis. */
export const MAX_REASON_LENGTH = 100;
const MAX_INPUT_LENGTH = 4096;

export type AgreementOutcome = { ok: true } | { ok: false; reason: string; error: CicError };

function notAgreement(why: string): CicError {
  return new CicError('ERR_INVALID_ARGUMENT', `not an agreement redirect (${why}); expected ${AGREEMENT_SUCCESS} or ${AGREEMENT_FAILURE}?error=REASON`);
}

/** Printable ASCII, bounded; "unspecified" when the server gave none. */
export function sanitizeReason(reason: string | null | undefined): string {
  const clean = (reason ?? '').replace(/[^\x20-\x7e]/g, '?').replace(/\s+/g, ' ').trim();
  if (clean === '') return 'unspecified';
  return clean.length > MAX_REASON_LENGTH ? `${clean.slice(0, MAX_REASON_LENGTH)}…` : clean;
}

/**
 * Reads the redirect Location of the terms page. Success → { ok: true }; failure → the
 * reason and an AUTH_TERMS_DECLINED error; anything else throws ERR_INVALID_ARGUMENT.
 */
export function parseAgreementRedirect(location: string): AgreementOutcome {
  if (typeof location !== 'string') throw notAgreement('not a string');
  const text = location.trim();
  if (text.length > MAX_INPUT_LENGTH) throw notAgreement(`longer than ${MAX_INPUT_LENGTH} characters`);
  if (/[\x00-\x20\x7f]/.test(text)) throw notAgreement('it holds spaces or control characters');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw notAgreement('not a URL');
  }
  if (url.protocol !== 'clova:') {
    const scheme = /^[a-z][a-z0-9+.-]{0,15}:$/.test(url.protocol) ? url.protocol : 'another scheme';
    throw notAgreement(`the scheme is ${scheme}`);
  }
  if (url.username || url.password || url.port) throw notAgreement('unexpected user or port');
  if (url.pathname !== '' && url.pathname !== '/') throw notAgreement('unexpected path');
  if (url.hash) throw notAgreement('unexpected fragment');
  const host = url.hostname.toLowerCase();
  if (host === 'agreement-success') {
    if (url.search) throw notAgreement('unexpected query on agreement-success');
    return { ok: true };
  }
  if (host === 'agreement-failure') {
    const reason = sanitizeReason(url.searchParams.get('error'));
    const error = new CicError('AUTH_TERMS_DECLINED', `the terms were not agreed (agreement-failure, error: ${reason})`, { details: { reason } });
    return { ok: false, reason, error };
  }
  throw notAgreement('the host is neither agreement-success nor agreement-failure');
}
