// Assertion helpers shared by the suites.
import * as assert from 'uvu/assert';
import { isCicError, type CicError } from '../../src/errors';

/** Awaits `p` and asserts it rejects with a CicError of `code`; returns the error. */
export async function rejects(p: Promise<unknown>, code: string): Promise<CicError> {
  try {
    await p;
  } catch (e) {
    assert.ok(isCicError(e), `expected a CicError, got ${String(e)}`);
    assert.is((e as CicError).code, code, (e as Error).message);
    return e as CicError;
  }
  throw new Error(`expected a rejection with ${code}, but the call resolved`);
}
