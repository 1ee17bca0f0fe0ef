// The full CIC scenario of `npm run test:arm`: the shipped bundle and the target's addon, under
// qemu (natively for the x64 runs), against the auth and CIC emulators running natively on the
// host.
//
//   1. emulated `cic-runtime login --account-token …` → tokens in a fresh state directory
//   2. emulated `cic-runtime run` (debug log on stderr, PING every 2 s):
//      state transitions through ready (entered on Clova.Hello), one event → Speak + eventSent,
//      one PING ACK; then the host drops every socket (forced reconnect), the runtime must be
//      ready again, a second event goes through, and SIGTERM ends it with exit 0.
// The emulated process never starts a child (no binfmt): the host drives every step.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startEmulators } from './emulator.mjs';

/** Settings handed to the emulated runtime (the demo account stays out of its environment). */
const RUNTIME_ENV = ['CIC_AUTH_URL', 'CIC_URL', 'CIC_CLIENT_ID', 'CIC_CLIENT_SECRET', 'CIC_DEVICE_ID', 'CIC_MODEL_ID', 'CIC_USER_AGENT', 'CIC_CA_FILE', 'CIC_TOKEN_FILE'];

function event(n) {
  return JSON.stringify({ namespace: 'TextRecognizer', name: 'Recognize', payload: { text: `arm ${n}` }, dialogRequestId: `arm-d-${n}` }) + '\n';
}

export const cicScenario = {
  name: 'cic',
  timeoutMs: 240_000,
  async hostSetup(ctx) {
    const stateDir = join(ctx.armBuild, `state-${ctx.target}`);
    rmSync(stateDir, { recursive: true, force: true });
    const emus = await startEmulators({ quiet: true, stateDir, envFile: null });
    const env = Object.fromEntries(RUNTIME_ENV.map((k) => [k, emus.env[k]]));
    return {
      emus,
      // NODE_OPTIONS as in the README's systemd unit: the runtime must live in that heap.
      env: { ...env, CIC_LOG_LEVEL: 'debug', CIC_PING_INTERVAL_MS: '2000', CIC_PING_TIMEOUT_MS: '1500', NODE_OPTIONS: '--max-old-space-size=32 --max-semi-space-size=1' },
      transitions: [],
      readyCount: 0,
      sent: [],
      directives: [],
      pings: [],
      droppedAt: undefined,
      login: undefined,
      async close() {
        await emus.auth.stop();
        await emus.cic.stop();
      },
    };
  },
  async beforeRun(ctx, host, emulate) {
    const run = await emulate({ args: ['login', '--account-token', host.emus.env.CIC_DEMO_ACCOUNT], env: host.env });
    if (run.code !== 0) throw new Error(`emulated login exited ${run.code ?? run.signal}: ${run.stderr.trim().split('\n').pop()}`);
    host.login = run;
    console.log(`    ${ctx.id} cic: logged in (emulated \`login\`, ${run.ms} ms)`);
  },
  emulatedScript: (ctx) => ctx.bundle,
  args: () => ['run'],
  env: (ctx, host) => host.env,
  onLine(line, json, io, ctx, host, stream) {
    if (!json) return;
    if (stream === 'stderr') {
      if (json.msg === 'cic state') {
        const ms = io.elapsedMs();
        host.transitions.push({ from: json.from, to: json.to, ms });
        console.log(`    ${ctx.id} cic: state ${json.from} → ${json.to} (+${ms} ms)`);
        if (json.to === 'ready') {
          // `run` consumes Clova.Hello itself (it is what makes the connection ready).
          if (host.helloMs === undefined && /Clova\.Hello/.test(json.reason ?? '')) host.helloMs = ms;
          host.readyCount++;
          if (host.readyCount === 1) io.write(event(1));
          if (host.readyCount === 2 && host.droppedAt !== undefined) {
            host.reconnectMs = ms - host.droppedAt;
            io.write(event(2));
          }
        }
      } else if (json.msg === 'ping' && typeof json.rttMs === 'number') {
        host.pings.push(json.rttMs);
        // The first PING after the first event: force a reconnect from the host side.
        if (host.sent.length === 1 && host.droppedAt === undefined) {
          host.droppedAt = io.elapsedMs();
          host.emus.cic.dropSocket();
        }
      }
      return;
    }
    if (json.directive) {
      const h = json.directive.header ?? {};
      host.directives.push(`${h.namespace}.${h.name}`);
    } else if (json.eventSent || json.eventFailed) {
      host.sent.push(json);
      if (host.sent.length === 2) io.kill('SIGTERM');
    }
  },
  check(run, ctx, host) {
    const path = host.transitions.map((t) => t.to);
    const firstReady = path.indexOf('ready');
    if (firstReady < 0) throw new Error(`never ready; states: ${['idle', ...path].join(' → ') || 'none'}`);
    if (host.helloMs === undefined) throw new Error('ready without Clova.Hello');
    if (!host.directives.includes('SpeechSynthesizer.Speak')) throw new Error(`no Speak directive for the event (got ${host.directives.join(', ')})`);
    const failed = host.sent.filter((s) => !s.eventSent || s.eventSent.status !== 200);
    if (host.sent.length !== 2 || failed.length) throw new Error(`events: ${JSON.stringify(host.sent)}`);
    if (!host.pings.length) throw new Error('no PING ACK');
    if (host.droppedAt === undefined || host.readyCount < 2) throw new Error(`no reconnect after the forced drop (ready ${host.readyCount}×)`);
    if (!path.slice(firstReady + 1).includes('reconnecting')) throw new Error(`the drop did not go through reconnecting: ${path.join(' → ')}`);
    if (host.emus.cic.counters.sessions < 2) throw new Error(`the emulator saw ${host.emus.cic.counters.sessions} connections`);
    if (run.code !== 0) throw new Error(`exit ${run.code ?? run.signal} after SIGTERM`);
    return `states idle → ${path.join(' → ')}; login ${host.login.ms} ms; spawn→Hello ${host.helloMs} ms, ` +
      `2 events 200 (Speak received); ping rtt ${host.pings[0]} ms; ` +
      `socket drop → ready again in ${host.reconnectMs} ms; exit 0 in ${run.ms} ms`;
  },
  figure: (run, ctx, host) => host.helloMs,
};
