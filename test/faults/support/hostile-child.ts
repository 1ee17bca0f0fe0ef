// Child-process entry for the hostile peer (forked by hostile-process.ts with an IPC channel):
// the peer's own buffers and CPU stay out of the test process, whose RSS and CPU time are the
// runtime's. argv[2] is the JSON of HostileOptions.
import { join } from 'node:path';
import { startHostilePeer, type HostileOptions } from './hostile-peer';

process.env.CIC_TEST_ROOT ??= join(__dirname, '..', '..', '..', '..', '..');

async function main(): Promise<void> {
  const opts = JSON.parse(process.argv[2] ?? '{}') as HostileOptions;
  const peer = await startHostilePeer(opts);
  process.on('message', (m: { type: string; id?: number }) => {
    if (m.type === 'stats') process.send!({ type: 'stats', id: m.id, stats: peer.stats });
    else if (m.type === 'stop-hostile') peer.stopHostile();
    else if (m.type === 'close') void peer.close().then(() => process.exit(0));
  });
  // The parent went away (crashed or killed): do not linger.
  process.on('disconnect', () => process.exit(0));
  process.send!({ type: 'listening', port: peer.port });
}

main().catch((e) => {
  process.stderr.write(`hostile peer: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
