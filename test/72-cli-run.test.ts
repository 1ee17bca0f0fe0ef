// `cic-runtime run` from the bundle, as a device runs it: a frozen link is detected within
// pingIntervalMs + pingTimeoutMs + 1 s, events queued while the link is down are sent exactly
// once after the reconnect, and an event in flight when the link dies is reported as failed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AuthEmulator } from './emulator/auth-server';
import { testPki } from './support/certs';
import { buildBundle, pairedEnv, RuntimeProcess } from './support/runtime-process';
import { directive, startCicEmulator, type CicEmulator } from './emulator/cic-server';

const pki = testPki();
const PING_INTERVAL_MS = 1000;
const PING_TIMEOUT_MS = 500;

let auth: AuthEmulator;
let cic: CicEmulator;
let env: NodeJS.ProcessEnv;

test.before(async () => {
  await buildBundle();
  auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
  await auth.start();
  cic = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, validateToken: (t) => auth.isValidAccessToken(t) });
  ({ env } = await pairedEnv({ auth, cic, caPath: pki.caPath }, 'run-test-device', { CIC_PING_INTERVAL_MS: String(PING_INTERVAL_MS), CIC_PING_TIMEOUT_MS: String(PING_TIMEOUT_MS) }));
});

test.after(async () => {
  await cic.stop();
  await auth.stop();
});

test('run: directives out, events in, frozen link replaced, queued events once, in-flight failed', async () => {
  const rt = new RuntimeProcess(env);
  try {
    await rt.state('ready');

    // stdout says when the runtime is connected: a state line on every change, and Clova.Hello
    // (the directive that made it ready) printed like every other directive, after the ready line.
    const readyLine = await rt.waitFor('out', (j) => j.state?.state === 'ready', 'the ready state line');
    const helloLine = await rt.waitFor('out', (j) => j.directive?.header?.namespace === 'Clova' && j.directive?.header?.name === 'Hello', 'Clova.Hello on stdout');
    assert.ok(rt.out.indexOf(readyLine) < rt.out.indexOf(helloLine), 'ready, then Hello');
    assert.equal(rt.out.filter((l) => l.json.state).map((l) => l.json.state.state), ['connecting', 'ready']);
    assert.equal(Object.keys(readyLine.json.state), ['state', 'loggedIn', 'deviceId', 'tokenExpiresAt', 'connectedSince', 'lastPingRttMs', 'reconnects', 'queuedEvents', 'version']);
    assert.equal([readyLine.json.state.loggedIn, readyLine.json.state.deviceId, readyLine.json.state.reconnects], [true, 'run-test-device', 0]);
    assert.match(readyLine.json.state.connectedSince, /^\d{4}-\d\d-\d\dT/);

    // An event round trip.
    rt.send({ namespace: 'System', name: 'SynchronizeState', payload: {} });
    const sent = await rt.waitFor('out', (j) => j.eventSent, 'eventSent');
    assert.equal(Object.keys(sent.json.eventSent), ['messageId', 'namespace', 'name', 'status']);
    assert.is(sent.json.eventSent.status, 204);

    // A directive pushed on the downchannel comes out on stdout as received.
    cic.pushDirective(directive('Settings', 'Update', { volume: 5 }));
    const d = await rt.waitFor('out', (j) => j.directive?.header?.name === 'Update', 'directive');
    assert.equal(d.json.directive.payload, { volume: 5 });

    // A malformed stdin line: a JSON error on stderr, and the runtime keeps going.
    rt.child.stdin.write('this is not json\n');
    await rt.waitFor('err', (j) => j.msg === 'malformed stdin line ignored' && j.code === 'USAGE', 'stdin error line');

    // Freeze the link: detection within pingInterval + pingTimeout + 1 s.
    const mark = rt.err.length;
    const frozenAt = Date.now();
    cic.freeze(true);
    const down = await rt.waitFor('err', (j) => j.msg === 'cic state' && j.to === 'reconnecting', 'reconnecting', mark);
    const detectMs = down.at - frozenAt;
    console.log(`frozen link detected after ${detectMs} ms (bound ${PING_INTERVAL_MS + PING_TIMEOUT_MS + 1000} ms)`);
    assert.is(down.json.code, 'H2_PING_TIMEOUT');
    assert.ok(detectMs <= PING_INTERVAL_MS + PING_TIMEOUT_MS + 1000, `detected after ${detectMs} ms`);
    const downLine = await rt.waitFor('out', (j) => j.state?.state === 'reconnecting', 'the reconnecting state line');
    assert.equal([downLine.json.state.code, downLine.json.state.connectedSince, downLine.json.state.reconnects], ['H2_PING_TIMEOUT', null, 1]);

    // Events written while the link is down wait, then go out exactly once.
    const before = cic.counters.eventsReceived;
    rt.send({ namespace: 'Test', name: 'Queued1' });
    rt.send({ namespace: 'Test', name: 'Queued2' });
    cic.freeze(false);
    const outMark = rt.out.length;
    await rt.waitFor('out', (j) => j.eventSent?.name === 'Queued2', 'Queued2 sent', outMark);
    await rt.waitFor('out', (j) => j.eventSent?.name === 'Queued1', 'Queued1 sent', outMark);
    assert.is(cic.counters.eventsReceived - before, 2, 'each queued event reached the server once');
    // Back up: ready again, announced by a state line and a new Clova.Hello.
    const upAgain = await rt.waitFor('out', (j) => j.state?.state === 'ready', 'ready again on stdout', rt.out.indexOf(downLine));
    await rt.waitFor('out', (j) => j.directive?.header?.name === 'Hello', 'the new Hello', rt.out.indexOf(upAgain));

    // An event in flight when the link dies: reported failed, never resent.
    cic.holdEvents(true);
    rt.send({ namespace: 'Test', name: 'InFlight' });
    const end = Date.now() + 10_000;
    while (cic.counters.eventsHeld === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.is(cic.counters.eventsHeld, 1);
    cic.dropSocket();
    const failed = await rt.waitFor('out', (j) => j.eventFailed?.name === 'InFlight', 'eventFailed');
    assert.equal(Object.keys(failed.json.eventFailed), ['messageId', 'namespace', 'name', 'code']);
    assert.is(failed.json.eventFailed.code, 'CIC_EVENT_FAILED');
    cic.holdEvents(false);
    await rt.state('ready', rt.err.length - 1);
    // An event sent after the reconnect is answered; a resend of InFlight would have gone first.
    const afterMark = rt.out.length;
    rt.send({ namespace: 'Test', name: 'AfterReconnect' });
    await rt.waitFor('out', (j) => j.eventSent?.name === 'AfterReconnect', 'AfterReconnect sent', afterMark);
    assert.is(cic.events.filter((e) => e.name === 'InFlight').length, 1, 'not resent after the reconnect');
    assert.is(cic.counters.eventsHeld, 1);
  } finally {
    rt.child.kill('SIGTERM');
  }
  assert.is(await rt.exit, 0, 'SIGTERM ends with exit 0');
  for (const s of auth.secrets) {
    assert.not.ok(rt.err.some((l) => JSON.stringify(l.json).includes(s)), 'no secret on stderr');
  }
});

test.run();
