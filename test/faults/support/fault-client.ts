// The real CicClient on the real clock, with short keepalive settings, recording every state
// change (with its time), directive, problem and ping, for the fault suite.
import { CicClient, type CicClientOptions } from '../../../src/cic/client';
import { readDirectives } from '../../../src/cic/directive-reader';
import type { StateChange } from '../../../src/cic/state';
import type { ReceivedDirective } from '../../../src/cic/types';
import type { CicError } from '../../../src/errors';
import { testPki } from '../../support/certs';
import { now, until } from './fault-measure';

export const PING_INTERVAL_MS = 1_000;
export const PING_TIMEOUT_MS = 500;
export const CONNECT_TIMEOUT_MS = 2_000;
/** Backoff for the fault cases: real jittered shape, small steps, half of each ceiling. */
export const BACKOFF = { baseMs: 250, maxMs: 2_000, random: () => 0.5 };

export interface TimedState extends StateChange {
  at: number;
}

export interface FaultClient {
  client: CicClient;
  states: TimedState[];
  directives: Array<ReceivedDirective & { at: number }>;
  problems: CicError[];
  pings: Array<{ at: number; rttMs: number }>;
  /** Resolves once the client is ready; fails after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<void>;
  /** Time of the first state change after `since` that leaves 'ready'. */
  leftReadyAfter(since: number): TimedState | undefined;
  /** Time of the first arrival in 'ready' after `since`. */
  readyAfter(since: number): TimedState | undefined;
  /** Connection attempts ('connecting' transitions) so far. */
  attempts(): number;
  stop(): Promise<void>;
}

export function startFaultClient(url: string, extra: Partial<CicClientOptions> = {}): FaultClient {
  const pki = testPki();
  const client = new CicClient({
    url,
    userAgent: 'FaultSuite/Client/1.0.0 (Linux;test-hw)',
    tokens: {
      getAccessToken: async () => 'fault-suite-token-1',
      onUnauthorized: async () => 'fault-suite-token-2',
    },
    readDirectives,
    ca: pki.ca,
    caMode: 'only',
    pingIntervalMs: PING_INTERVAL_MS,
    pingTimeoutMs: PING_TIMEOUT_MS,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    helloTimeoutMs: 5_000,
    backoff: BACKOFF,
    ...extra,
  });
  const fc: FaultClient = {
    client,
    states: [],
    directives: [],
    problems: [],
    pings: [],
    ready: async (timeoutMs = 10_000) => {
      await until(() => client.state === 'ready' || client.state === 'closed', 'the client to be ready', timeoutMs);
      if (client.state !== 'ready') throw new Error(`client closed: ${client.closeError?.code}`);
    },
    leftReadyAfter: (since) => fc.states.find((s) => s.at >= since && s.from === 'ready' && s.to !== 'ready'),
    readyAfter: (since) => fc.states.find((s) => s.at >= since && s.to === 'ready'),
    attempts: () => fc.states.filter((s) => s.to === 'connecting').length,
    stop: () => client.stop(500),
  };
  client.on('state', (s) => fc.states.push({ ...s, at: now() }));
  client.on('directive', (d) => fc.directives.push({ ...d, at: now() }));
  client.on('problem', (e) => fc.problems.push(e));
  client.on('ping', (rttMs) => fc.pings.push({ at: now(), rttMs }));
  client.start();
  return fc;
}
