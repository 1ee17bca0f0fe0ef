// Soak client: a child process (started by soak-driver.ts with --expose-gc) running one real
// CicClient against the CIC emulator in the parent: PING every second, events at a steady
// rate, directives counted. It reports over IPC and measures itself on request.
//
// Hazards:
// - Memory is read only after forced full GCs with turns of the event loop in between (weak
//   callbacks and finalizers run on later turns); a reading without them measures garbage.
// - Nothing here may keep the process alive after 'stop': the driver asserts that the
//   process exits by itself once the client stopped and IPC is disconnected (a timer or
//   socket left behind is a leak the memory figures alone would not show).
import { readFileSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { CicClient } from '../../../src/cic/client';
import { readDirectives } from '../../../src/cic/directive-reader';
import type { EventResult, OutgoingEvent } from '../../../src/cic/types';
import { isCicError } from '../../../src/errors';
import { createLogger } from '../../../src/log';
import { loadBinding } from '../../../src/h2/native';
import type { ClientMessage, DriverMessage, SoakReport, SoakSample } from './soak-protocol';

const UA = 'Soak/Client/1.0.0 (Linux 6.1;soak-hw)';
const url = process.env.CIC_SOAK_URL ?? '';
const caPath = process.env.CIC_SOAK_CA ?? '';
const eventIntervalMs = Number(process.env.CIC_SOAK_EVENT_INTERVAL_MS ?? '200');
const SETTLE_TIMEOUT_MS = 30_000;

const gc = (globalThis as { gc?: () => void }).gc;
const send = (m: ClientMessage) => process.send?.(m);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

if (!gc || !process.send || !url || !caPath) {
  console.error('soak-client: needs --expose-gc, an IPC channel, CIC_SOAK_URL and CIC_SOAK_CA');
  process.exit(2);
}

const binding = loadBinding();
const logged: Record<string, number> = {};
const log = createLogger({
  level: 'warn',
  write: (line) => {
    const msg = String((JSON.parse(line) as { msg?: unknown }).msg);
    logged[msg] = (logged[msg] ?? 0) + 1;
    process.stderr.write(line);
  },
});

const client = new CicClient({
  url,
  userAgent: UA,
  tokens: { getAccessToken: async () => 'soak-access-token', onUnauthorized: async () => 'soak-access-token' },
  readDirectives,
  ca: readFileSync(caPath, 'utf8'),
  caMode: 'only',
  log,
  pingIntervalMs: 1_000,
  pingTimeoutMs: 10_000,
  // A connection proves stable long before the next forced reconnect, so every forced
  // reconnect starts from a reset backoff (immediate replacement).
  stableAfterMs: 5_000,
});

let readyCount = 0;
const transitions: Record<string, number> = {};
let pings = 0;
let maxPingRttMs = 0;
let problems = 0;
const directives: Record<string, number> = {};
client.on('state', (c) => {
  const key = `${c.from}->${c.to} (${c.reason})`;
  transitions[key] = (transitions[key] ?? 0) + 1;
  if (c.to === 'ready') send({ type: 'ready', n: ++readyCount });
});
client.on('ping', (rtt) => {
  pings++;
  maxPingRttMs = Math.max(maxPingRttMs, rtt);
});
client.on('problem', () => problems++);
const onDirective = (d: { directive: { header: { namespace: string; name: string }; payload: unknown }; source: string }) => {
  const h = d.directive.header;
  const key = `${h.namespace}.${h.name} (${d.source})`;
  directives[key] = (directives[key] ?? 0) + 1;
  if (h.namespace === 'Soak' && d.source === 'downchannel') send({ type: 'directive', seq: Number((d.directive.payload as { seq?: unknown }).seq) });
};
client.on('directive', onDirective);
client.on('dropped', onDirective);

// ---- events ---------------------------------------------------------------------------------

let eventsSent = 0;
let eventsOk = 0;
const eventsFailed: Record<string, number> = {};
const okByStatus: Record<number, number> = {};
const pending = new Set<string>();

async function* audio(): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < 8; i++) {
    yield Buffer.alloc(2048, i);
    await sleep(10);
  }
}

/** A mix: 6 in 10 SynchronizeState (204), 3 TextRecognizer (Speak + attachment), 1 speech with streamed audio. */
function nextEvent(seq: number): OutgoingEvent {
  const k = seq % 10;
  if (k === 0) return { namespace: 'SpeechRecognizer', name: 'Recognize', payload: { format: 'AUDIO_L16_RATE_16000_CHANNELS_1' }, dialogRequestId: `soak-${seq}`, audio: audio() };
  if (k === 1 || k === 4 || k === 7) return { namespace: 'TextRecognizer', name: 'Recognize', payload: { text: `soak ${seq}` }, dialogRequestId: `soak-${seq}` };
  return { namespace: 'System', name: 'SynchronizeState', payload: { seq } };
}

function sendOne(): void {
  const p = client.sendEvent(nextEvent(++eventsSent));
  const id = p.messageId;
  pending.add(id);
  p.then(
    (r: EventResult) => {
      eventsOk++;
      okByStatus[r.status] = (okByStatus[r.status] ?? 0) + 1;
      send({ type: 'ok', messageId: r.messageId, status: r.status });
      pending.delete(id);
    },
    (e: unknown) => {
      const code = isCicError(e) ? e.code : 'UNCODED';
      eventsFailed[code] = (eventsFailed[code] ?? 0) + 1;
      pending.delete(id);
    },
  );
}

let eventTimer: NodeJS.Timeout | undefined;

// ---- measurement ------------------------------------------------------------------------------

async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise((r) => setImmediate(r));
    await sleep(25);
  }
}

function resources(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1;
  return out;
}

async function sample(snapshot?: string): Promise<SoakSample> {
  await collect();
  const m = process.memoryUsage();
  const codeUsed = getHeapSpaceStatistics()
    .filter((sp) => sp.space_name.startsWith('code_'))
    .reduce((a, sp) => a + sp.space_used_size, 0);
  const s = client.stats();
  // After the reading: writing a snapshot allocates.
  if (snapshot) writeHeapSnapshot(snapshot);
  return {
    atMs: Math.round(performance.now()),
    rss: m.rss,
    heapUsed: m.heapUsed,
    codeUsed,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    liveSessions: binding.liveSessions(),
    liveStreams: s.connection?.liveStreams ?? -1,
    bufferedBodyBytes: s.connection?.bufferedBodyBytes ?? 0,
    pendingOutputBytes: s.connection?.pendingOutputBytes ?? 0,
    inFlight: s.inFlight,
    queued: s.queued,
    resources: resources(),
  };
}

/** Stops sending and waits until every event settled, the last streams closed and a ping or two went by. */
async function settle(): Promise<void> {
  clearInterval(eventTimer);
  eventTimer = undefined;
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (pending.size > 0 && Date.now() < deadline) await sleep(50);
  await sleep(2_500);
}

/** A reading at rest (no event in flight), then events resume. */
async function quietSample(snapshot?: string): Promise<SoakSample> {
  await settle();
  try {
    return await sample(snapshot);
  } finally {
    if (!finished) eventTimer = setInterval(sendOne, eventIntervalMs);
  }
}

let finished = false;

async function finish(snapshot?: string): Promise<SoakReport> {
  finished = true;
  await settle();
  const final = await sample(snapshot);
  return {
    readyCount,
    transitions,
    pings,
    maxPingRttMs,
    eventsSent,
    eventsOk,
    eventsFailed,
    eventsUnsettled: pending.size,
    okByStatus,
    directives,
    logged,
    problems,
    final,
  };
}

process.on('message', (m: DriverMessage) => {
  const run = async () => {
    if (m.type === 'sample') send({ type: 'sample', id: m.id, sample: await (m.quiet ? quietSample(m.snapshot) : sample(m.snapshot)) });
    else if (m.type === 'finish') send({ type: 'report', report: await finish(m.snapshot) });
    else if (m.type === 'stop') {
      await client.stop();
      await collect();
      send({ type: 'stopped', liveSessions: binding.liveSessions(), resources: resources() });
    }
  };
  run().catch((e: Error) => send({ type: 'fatal', message: e.stack ?? String(e) }));
});

client.start();
eventTimer = setInterval(sendOne, eventIntervalMs);
