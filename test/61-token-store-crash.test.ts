// Crash test: a real writer process is SIGKILLed at a random moment while it saves records in
// a tight loop; the file must always read back as an intact record that is either the last
// one the writer acknowledged or the one it was writing — never older, never torn, never
// "recovered" (a process crash must not even cost the newest generation).
//
//   CIC_CRASH_ROUNDS (default 1000), CIC_CRASH_TIME_LIMIT_S (default 240), CIC_CRASH_SEED
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TokenStore } from '../src/auth/token-store';
import { FORMAT_VERSION, decodeTokens, scanFile } from '../src/auth/token-record';
import { counterOf } from './support/store-crash-writer';
import { prng } from './support/prng';

const ROUNDS = Number(process.env.CIC_CRASH_ROUNDS ?? 1000);
const TIME_LIMIT_MS = Number(process.env.CIC_CRASH_TIME_LIMIT_S ?? 240) * 1000;
const SEED = Number(process.env.CIC_CRASH_SEED ?? 0x5eed1);
/** The first save of a fresh process takes ~6 ms, later ones ~1.5 ms: kills land anywhere in the
 * first dozen saves, including mid-write, between rename and acknowledgement, and in cleanup. */
const MAX_KILL_DELAY_MS = 25;
const WRITER = join(__dirname, 'support', 'store-crash-writer.js');

// NODE_EXTRA_CA_CERTS costs ~50 ms per Node start (it parses a whole CA bundle).
const childEnv = { ...process.env };
delete childEnv.NODE_EXTRA_CA_CERTS;

interface Round {
  start: number | undefined;
  acks: number[];
  stderr: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

function runRound(path: string, killDelayMs: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, path], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      // The kill clock starts when the writer reports it is about to write, so start-up time
      // does not eat the random delay and every kill lands during the save loop.
      if (timer === undefined && out.startsWith('start ') && out.includes('\n')) {
        timer = setTimeout(() => child.kill('SIGKILL'), killDelayMs);
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const lines = out.split('\n').filter((l) => l !== '');
      const first = lines[0]?.startsWith('start ') ? Number(lines.shift()!.slice(6)) : undefined;
      // A line cut by the kill is not an acknowledgement.
      const complete = out.endsWith('\n') ? lines : lines.slice(0, -1);
      resolve({ start: first, acks: complete.map(Number), stderr, code, signal });
    });
  });
}

test('SIGKILL at random moments during saves never leaves a torn, old or recovered record', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cic-crash-'));
  const path = join(dir, 'store', 'tokens.bin');
  const random = prng(SEED);
  const started = Date.now();
  let baseline = 0; // the counter verified on disk after the previous round
  let rounds = 0;
  let ahead = 0; // rounds where the file held the unacknowledged save in flight
  let leftovers = 0; // rounds that left a temp file behind
  try {
    while (rounds < ROUNDS && Date.now() - started < TIME_LIMIT_MS) {
      const delay = random() * MAX_KILL_DELAY_MS;
      const r = await runRound(path, delay);
      const where = `round ${rounds + 1} (seed ${SEED}, delay ${delay.toFixed(2)} ms)`;
      assert.is(r.stderr, '', `${where}: writer stderr`);
      assert.is(r.signal, 'SIGKILL', `${where}: writer must die by the kill, exited ${r.code}`);
      assert.is(r.start, baseline, `${where}: writer must start from the verified record`);
      for (let i = 1; i < r.acks.length; i++) assert.is(r.acks[i], r.acks[i - 1]! + 1, `${where}: acks in order`);
      const acked = r.acks.length ? r.acks[r.acks.length - 1]! : baseline;

      const loaded = await new TokenStore({ path }).load();
      // Only before the very first save completes may there be no file at all.
      if (loaded.state === 'empty' && acked === 0) {
        rounds++;
        continue;
      }
      if (loaded.state !== 'ok') assert.unreachable(`${where}: file is ${loaded.state}${'reason' in loaded ? `: ${loaded.reason}` : ''}`);
      else {
        assert.is(loaded.recovered, false, `${where}: newest generation lost`);
        assert.is(loaded.warning, undefined, `${where}: warning`);
        const n = counterOf(loaded.tokens);
        assert.ok(n === acked || n === acked + 1, `${where}: file holds ${n}, last acknowledged ${acked}`);
        if (n === acked + 1 && n !== baseline) ahead++;
        // Two generations, each intact: the previous one is the save before.
        if (n >= 2) {
          const scan = scanFile(await readFile(path));
          if (scan.kind !== 'slots') assert.unreachable(`${where}: scan ${scan.kind}`);
          else {
            assert.is(scan.slots.length, 2, `${where}: generations in file`);
            assert.is(scan.strayBytes, 0, `${where}: stray bytes`);
            assert.is(scan.slots[0]!.version, FORMAT_VERSION);
            const prev = decodeTokens(scan.slots[1]!.payload);
            assert.is(typeof prev === 'string' ? NaN : counterOf(prev), n - 1, `${where}: previous generation`);
          }
        }
        baseline = n;
      }
      const temps = (await readdir(join(dir, 'store'))).filter((f) => f !== 'tokens.bin');
      // The next save removes a leftover, so more than one would mean cleanup does not work.
      assert.ok(temps.length <= 1, `${where}: ${temps.length} temp files left`);
      if (temps.length) leftovers++;
      rounds++;
    }
  } finally {
    const elapsed = (Date.now() - started) / 1000;
    console.log(
      `crash test: ${rounds} rounds in ${elapsed.toFixed(1)} s (seed ${SEED}); last record ${baseline}, ` +
        `${ahead} rounds caught an unacknowledged save on disk, ${leftovers} left a temp file`,
    );
    await rm(dir, { recursive: true, force: true });
  }
  assert.is(rounds, ROUNDS, `only ${rounds} of ${ROUNDS} rounds within ${TIME_LIMIT_MS / 1000} s`);
  assert.ok(baseline > rounds, 'the writers made progress');
});

test.run();
