// `npm start`: builds what is missing, starts the local emulators on 127.0.0.1 (generated
// CA), logs in through the auth emulator, connects to CIC, and shows Clova.Hello, an event
// round trip, PING round trips, a forced connection loss and the reconnect. Then it keeps
// running until Ctrl-C.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const say = (msg) => console.log(`\n▶ ${msg}`);
const show = (msg) => console.log(`  ${msg}`);

if (!existsSync(join(root, 'build/Release/cic_h2.node'))) {
  say('building the native addon');
  const r = spawnSync(process.execPath, [join(root, 'scripts/build-native.mjs')], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const { compileTs } = await import('./compile-ts.mjs');
await compileTs();
const lib = (p) => require(join(root, 'build/ts', p));
const { loadBinding } = lib('src/h2/native.js');
const { CicClient } = lib('src/cic/client.js');
const { readDirectives } = lib('src/cic/directive-reader.js');
const { TokenStore } = lib('src/auth/token-store.js');
const { ClovaAuthClient } = lib('src/auth/clova-auth.js');
const { TokenManager } = lib('src/auth/token-manager.js');
const { testPki } = lib('test/support/certs.js');
const { AuthEmulator } = lib('test/emulator/auth-server.js');
const { directive, startCicEmulator } = lib('test/emulator/cic-server.js');

console.log(`cic-runtime demo — nghttp2 ${loadBinding().nghttp2Version()} inside the addon, Node ${process.version}`);
const pki = testPki();
const auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca, secretsLog: null });
await auth.start();
const cic = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, validateToken: (t) => auth.isValidAccessToken(t) });
show(`auth emulator ${auth.url}`);
show(`CIC emulator  ${cic.url}`);

say('login through the auth emulator (authorize + token, stored on disk)');
const tokenFile = join(mkdtempSync(join(tmpdir(), 'cic-demo-')), 'state', 'token');
const tokens = new TokenManager({
  auth: new ClovaAuthClient({ authUrl: auth.url, clientId: auth.clientId, clientSecret: auth.clientSecret, deviceId: 'demo-device-0001', caPem: pki.ca }),
  store: new TokenStore({ path: tokenFile }),
  deviceId: 'demo-device-0001',
});
await tokens.start();
const login = await tokens.login(auth.addAccount());
show(`logged in; access token valid for ${Math.round(login.expiresInMs / 60000)} min; tokens in ${tokenFile} (0600)`);

say('connect: one TLS HTTP/2 connection, downchannel, Clova.Hello');
const client = new CicClient({
  url: cic.url,
  userAgent: 'CicRuntime/Demo/0.1.0 (Linux;Emulated;mode=demo)',
  tokens,
  readDirectives,
  ca: pki.ca,
  caMode: 'only',
  pingIntervalMs: 2_000,
  pingTimeoutMs: 1_000,
});
const started = performance.now();
client.on('state', (c) => show(`state ${c.from} → ${c.to}  (${c.reason}${c.code ? `, ${c.code}` : ''})`));
client.on('directive', (d) => show(`directive ${d.directive.header.namespace}.${d.directive.header.name} (${d.source})`));
// Attachments stream: the bytes of an answer's audio arrive on a.stream as CIC sends them.
client.on('attachment', (a) => {
  let bytes = 0;
  a.stream.on('data', (chunk) => (bytes += chunk.length));
  a.stream.on('end', () => show(`attachment cid:${a.contentId} streamed, ${bytes} bytes`));
  a.stream.on('error', (e) => show(`attachment cid:${a.contentId} failed: ${e.code}`));
});
client.start();
await client.ready();
show(`ready after ${(performance.now() - started).toFixed(0)} ms`);

say('an event round trip');
const r = await client.sendEvent({ namespace: 'System', name: 'SynchronizeState', payload: {} });
show(`event ${r.messageId} answered ${r.status}`);
const asked = await client.sendEvent({ namespace: 'TextRecognizer', name: 'Recognize', payload: { text: 'what is the weather' }, dialogRequestId: 'demo-dialog-1' });
for (const d of asked.directives) show(`answer: ${d.directive.header.namespace}.${d.directive.header.name}${d.attachments.length ? ` with ${d.attachments.map((a) => `attachment cid:${a.contentId}`).join(', ')}` : ''}`);
cic.pushDirective(directive('Settings', 'Update', { volume: 5 }));

say('PING round trips (every 2 s in this demo; every 60 s by default)');
await new Promise((resolve) => {
  let n = 0;
  const onPing = (rtt) => {
    show(`PING ACK after ${rtt.toFixed(3)} ms`);
    if (++n === 2) {
      client.off('ping', onPing);
      resolve();
    }
  };
  client.on('ping', onPing);
});

say('forced connection loss: the link freezes (no bytes either way, sockets stay open)');
const frozenAt = performance.now();
cic.freeze(true);
await new Promise((resolve) => client.on('state', (c) => c.to === 'reconnecting' && resolve()));
show(`dead link noticed after ${(performance.now() - frozenAt).toFixed(0)} ms (bound: interval 2000 + timeout 1000 + 1000 ms)`);
cic.freeze(false);
await client.ready();
show(`reconnected ${(performance.now() - frozenAt).toFixed(0)} ms after the freeze`);
const r2 = await client.sendEvent({ namespace: 'System', name: 'SynchronizeState', payload: {} });
show(`event after the reconnect answered ${r2.status}`);

say('running; Ctrl-C to stop');
let rtts = 0;
client.on('ping', () => rtts++);
const stop = async () => {
  console.log(`\nstopping (${rtts} more PINGs answered)`);
  await client.stop();
  await tokens.close();
  await cic.stop();
  await auth.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
if (process.env.CIC_DEMO_EXIT === '1') await stop();
