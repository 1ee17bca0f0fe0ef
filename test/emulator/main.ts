// Standalone CIC emulator: `node build/ts/test/emulator/main.js [--port N] [--window-ms N]`.
// Listens on 127.0.0.1 with the test PKI, prints one JSON line {port, caPath, url} on stdout,
// and runs until SIGINT or SIGTERM. Every token is accepted (there is no auth server here).
import { join } from 'node:path';
import { testPki } from '../support/certs';
import { startCicEmulator } from './cic-server';

// Compiled to build/ts/test/emulator/: share the checkout's test PKI (build/test-certs), as
// the test runner does, instead of one derived from the build directory.
process.env.CIC_TEST_ROOT ??= join(__dirname, '..', '..', '..', '..');

function flag(name: string): number | undefined {
  const i = process.argv.indexOf(name);
  if (i < 0) return undefined;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) {
    process.stderr.write(`${name} needs a non-negative integer\n`);
    process.exit(2);
  }
  return v;
}

async function main(): Promise<void> {
  const pki = testPki();
  const emu = await startCicEmulator({ port: flag('--port') ?? 0, downchannelWindowMs: flag('--window-ms') });
  process.stdout.write(`${JSON.stringify({ port: emu.port, caPath: pki.caPath, url: emu.url })}\n`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void emu.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  process.stderr.write(`cic emulator: ${(err as Error).message}\n`);
  process.exit(1);
});
