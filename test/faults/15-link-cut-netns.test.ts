// A real link cut: the CIC emulator runs in its own network namespace, joined to this one by
// a veth pair with link-local IPv4 or unique-local IPv6 addresses (one case each); the
// namespace end is taken down with `ip link` (a pulled cable: the runtime's packets vanish
// without any error) and brought up again. The real CicClient runs here on the real clock
// (keepalive 1000 ms, timeout 500 ms).
//
// Needs root (CAP_NET_ADMIN) and `ip` (iproute2). Where the machine refuses network
// namespaces the case is skipped with the reason printed — never counted as passed.
import { test } from 'uvu';
import { capabilityCase } from '../support/capability';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { BACKOFF, CONNECT_TIMEOUT_MS, PING_INTERVAL_MS, PING_TIMEOUT_MS, startFaultClient } from './support/fault-client';
import { report, within } from './support/fault-measure';
import { issueIpCert } from './support/ip-cert';
import { runLinkFault, type FaultServer } from './support/link-fault';
import { createNetnsLink, netnsUnavailable, type IpFamily } from './support/netns';

const SLACK_MS = 1_000;

interface NsEmulator {
  port: number;
  server: FaultServer;
  child: ChildProcess;
}

async function startNsEmulator(child: ChildProcess): Promise<NsEmulator> {
  const counts = new Map<string, number>();
  const waiters: Array<{ match: (v: Record<string, unknown>) => boolean; resolve: () => void }> = [];
  let port = 0;
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`namespace emulator exited (${code})`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { listening?: { port: number }; event?: { messageId: string }; held?: string };
      if (msg.listening) {
        port = msg.listening.port;
        resolve();
      }
      if (msg.event) counts.set(msg.event.messageId, (counts.get(msg.event.messageId) ?? 0) + 1);
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.match(msg)) waiters.splice(i, 1)[0]!.resolve();
      }
    });
  });
  await within(ready, 15_000, 'the namespace emulator');
  const waitFor = (match: (v: Record<string, unknown>) => boolean, timeoutMs: number, what: string) =>
    within(new Promise<void>((resolve) => waiters.push({ match, resolve })), timeoutMs, what);
  return {
    port,
    child,
    server: {
      hold: async (name) => {
        const held = waitFor((m) => m.held === name, 5_000, 'the hold to be acknowledged');
        child.stdin!.write(`${JSON.stringify({ hold: name })}\n`);
        await held;
      },
      eventSeen: async (messageId, timeoutMs) => {
        if (counts.has(messageId)) return;
        await waitFor((m) => (m.event as { messageId?: string } | undefined)?.messageId === messageId, timeoutMs, 'the event at the server');
      },
      count: async (messageId) => counts.get(messageId) ?? 0,
    },
  };
}

/** The pulled-cable case over one address family. */
async function linkCut(family: IpFamily): Promise<void> {
  const link = createNetnsLink(family);
  const cert = issueIpCert(link.nsIp);
  let fc: ReturnType<typeof startFaultClient> | undefined;
  try {
    const child = link.spawnIn([process.execPath, '--enable-source-maps', join(__dirname, 'support', 'netns-emulator.js'), link.nsIp, cert.certPath, cert.keyPath]);
    const emu = await startNsEmulator(child);
    fc = startFaultClient(link.urlOf(emu.port));
    await fc.ready(10_000);
    const r = await runLinkFault(fc, emu.server, {
      name: `veth-down-ipv${family}`,
      apply: () => link.down(),
      restore: () => link.up(),
      outageMs: 2_000,
      detectBoundMs: PING_INTERVAL_MS + PING_TIMEOUT_MS + SLACK_MS,
      // A connect attempt lost in the outage may have to run into its deadline first.
      recoverBoundMs: CONNECT_TIMEOUT_MS + BACKOFF.maxMs / 2 + SLACK_MS,
      codes: ['H2_PING_TIMEOUT'],
    });
    // While the cable was out, attempts ran into the connect deadline (silent drops), paced by the backoff.
    const during = fc.states.filter((s) => s.to === 'reconnecting').slice(1).map((s) => s.code);
    assert.ok(during.every((c) => c === 'H2_CONNECT_TIMEOUT' || c === 'H2_CONNECT_FAILED'), `failures while down: ${during}`);
    report(`veth-link-down-ipv${family}`, { detect: r.detectMs, recover: r.recoverMs, code: r.code, outageMs: 2_000, attemptsWhileDown: during.length, queued: `${r.queued}x1`, inflight: 'failed' });
  } finally {
    await fc?.stop();
    link.cleanup();
    cert.remove();
  }
  // Nothing left behind.
  assert.not.match(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }), new RegExp(`^${link.ns}\\b`, 'm'));
  assert.not.match(execFileSync('ip', ['link', 'show'], { encoding: 'utf8' }), new RegExp(`\\b${link.hostDev}\\b`));
  assert.not.ok(execFileSync('ip', [`-${family}`, 'route', 'show', 'type', 'unreachable'], { encoding: 'utf8' }).includes(link.net), 'the guard route is gone');
}

const CASES: Array<[IpFamily, string]> = [
  [4, 'link-local IPv4 169.254.N.0/30'],
  [6, 'unique-local IPv6 fd63:6963:0:N::/64'],
];

for (const [family, addresses] of CASES) {
  const name = `veth link pulled and plugged back (${addresses}): noticed within interval + timeout, ready after the link returns, queued once, in-flight failed`;
  capabilityCase(name, netnsUnavailable(family), () => linkCut(family));
}

test.run();
