// Preloaded by scripts/test.mjs into every test process. uvu's failure printer calls
// `err.details.split('\n')`: a CicError thrown from a test carries `details` as an object, and
// the printer itself would throw — the file would die without naming the failing test. The
// wrapper hands uvu a plain Error with the same message, stack and details as JSON text.
import Module = require('node:module');

type Handler = (...args: unknown[]) => unknown;

function printable(e: unknown): unknown {
  const details = (e as { details?: unknown } | null)?.details;
  if (!(e instanceof Error) || typeof details !== 'object' || details === null) return e;
  const code = (e as { code?: unknown }).code;
  const out = new Error(`${typeof code === 'string' ? `${code}: ` : ''}${e.message}`);
  out.stack = e.stack;
  // toJSON() is the redacted form: a server may have echoed a token into details.
  const toJSON = (e as unknown as { toJSON?: () => { details?: unknown } }).toJSON;
  const shown = typeof toJSON === 'function' ? (toJSON.call(e).details ?? details) : details;
  (out as Error & { details: string }).details = JSON.stringify(shown, null, 2);
  return out;
}

function wrapHandler(fn: Handler): Handler {
  return async (...args) => {
    try {
      return await fn(...args);
    } catch (e) {
      throw printable(e);
    }
  };
}

function wrapTest<T extends Handler & Record<string, unknown>>(test: T): T {
  const wrapped = ((name: string, fn: Handler) => test(name, wrapHandler(fn))) as unknown as T;
  for (const key of Object.keys(test)) (wrapped as Record<string, unknown>)[key] = test[key];
  if (typeof test.only === 'function') (wrapped as Record<string, unknown>).only = (name: string, fn: Handler) => (test.only as Handler)(name, wrapHandler(fn));
  return wrapped;
}

const load = (Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown })._load;
let patched: unknown;
(Module as unknown as { _load: typeof load })._load = function (request: string, ...rest: unknown[]) {
  const exports = load.call(this, request, ...rest);
  if (request !== 'uvu') return exports;
  if (!patched) {
    const uvu = exports as { test: Handler & Record<string, unknown>; suite: (...a: unknown[]) => Handler & Record<string, unknown> };
    patched = { ...uvu, test: wrapTest(uvu.test), suite: (...a: unknown[]) => wrapTest(uvu.suite(...a)) };
  }
  return patched;
};
