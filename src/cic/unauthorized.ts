// What the client does about HTTP 401 from CIC, over the life of a device.
//
// A 401 means "this access token is no good", not "this device is dead": the token may have
// been rotated out by a refresh that raced with the request, revoked by a server-side glitch,
// or refused by an overloaded front end. Only the auth server can say the grant is dead
// (invalid_grant), and it says so to the token source's refresh, which is terminal there.
// So: the first 401 in a row refreshes and retries at once; each further one in a row waits a
// capped, jittered delay first (a server that keeps refusing fresh tokens gets a slow, steady
// retry from every device of a fleet, not a storm and not a bricked device), and reports a
// warning the application can show.
import { CicError } from '../errors';
import { Backoff, type BackoffOptions } from '../util/backoff';

/** Delays between refreshes while CIC keeps refusing fresh tokens: 5 s doubling to 10 min. */
export const UNAUTHORIZED_BACKOFF: BackoffOptions = { baseMs: 5_000, maxMs: 10 * 60_000, minMs: 1_000 };

export class UnauthorizedPolicy {
  /** 401s since the last request CIC accepted. */
  streak = 0;
  /** The newest warning (CIC_UNAUTHORIZED), kept until a request is accepted again. */
  warning: CicError | undefined;
  private readonly backoff: Backoff;

  constructor(options: BackoffOptions = {}) {
    this.backoff = new Backoff({ ...UNAUTHORIZED_BACKOFF, ...options });
  }

  /**
   * Records a 401 on `what`. Returns the delay before the refresh it calls for (0: at once)
   * and, from the second in a row on, the warning to report.
   */
  record(what: string): { delayMs: number; warning: CicError | undefined } {
    this.streak++;
    if (this.streak < 2) return { delayMs: 0, warning: undefined };
    const delayMs = this.backoff.next();
    this.warning = new CicError('CIC_UNAUTHORIZED', `${what}: CIC refused the access token again after a refresh (${this.streak} in a row); retrying in ${Math.round(delayMs)} ms`, {
      details: { streak: this.streak, retryInMs: Math.round(delayMs) },
    });
    return { delayMs, warning: this.warning };
  }

  /** CIC accepted a request: the streak is over. */
  accepted(): void {
    if (this.streak === 0) return;
    this.streak = 0;
    this.warning = undefined;
    this.backoff.reset();
  }
}
