// The CIC emulator as a child process inside a network namespace (started with
// `ip netns exec NS node netns-emulator.js HOST CERT KEY`), driven by JSON lines:
//   stdout: {"listening": {port}} once, then {"event": {messageId, name}} per received event;
//   stdin:  {"hold": "Namespace.Name"} → events of that name are never answered,
//           answered with {"held": "Namespace.Name"}.
// It exits when stdin closes (the test process went away).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startCicEmulator } from '../../emulator/cic-server';

process.env.CIC_TEST_ROOT ??= join(__dirname, '..', '..', '..', '..', '..');

async function main(): Promise<void> {
  const [host, certPath, keyPath] = process.argv.slice(2);
  if (!host || !certPath || !keyPath) throw new Error('usage: netns-emulator HOST CERT KEY');
  const emu = await startCicEmulator({ host, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') });
  const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
  emu.on('event', (e: { messageId: string; namespace: string; name: string }) => out({ event: { messageId: e.messageId, name: `${e.namespace}.${e.name}` } }));
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const cmd = JSON.parse(line) as { hold?: string };
    if (cmd.hold) {
      emu.setResponder(cmd.hold, () => 'hold');
      out({ held: cmd.hold });
    }
  });
  lines.on('close', () => void emu.stop().then(() => process.exit(0)));
  out({ listening: { port: emu.port } });
}

main().catch((e) => {
  process.stderr.write(`netns emulator: ${(e as Error).message}\n`);
  process.exit(1);
});
