// A test that needs something the machine may lack (IPv6 loopback, network namespaces, root).
// On a developer's machine without it, the case is skipped with the reason printed (never
// counted as passed). Under CI=true it fails instead: CI runs as root with IPv6 loopback and
// namespaces, so a case that stops running there has lost a capability, and that must not be
// able to pass silently.
import { test } from 'uvu';

export function capabilityCase(name: string, missing: string | undefined, body: () => Promise<void> | void): void {
  if (!missing) {
    test(name, body);
    return;
  }
  if (process.env.CI === 'true') {
    test(name, () => {
      throw new Error(`this case needs a capability CI has, and it is missing here: ${missing}`);
    });
    return;
  }
  console.log(`SKIP ${name}: ${missing}`);
  test.skip(name, () => {});
}
