// A device application using cic-runtime as a library: pair once, then stay connected.
import { readFileSync } from 'node:fs';
import { CicClient, ClovaAuthClient, TokenManager, TokenStore, buildUserAgent, createLogger, isCicError, newDialogRequestId, readDirectives } from 'cic-runtime';

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const ca = process.env.CIC_CA_FILE ? readFileSync(process.env.CIC_CA_FILE, 'utf8') : undefined; // trusted in addition to the system CAs
  const log = createLogger({ level: 'warn' }); // JSON lines on stderr; tokens and secrets redacted
  const auth = new ClovaAuthClient({
    authUrl: env('CIC_AUTH_URL'), clientId: env('CIC_CLIENT_ID'), clientSecret: env('CIC_CLIENT_SECRET'),
    deviceId: env('CIC_DEVICE_ID'), caPem: ca, log,
  });
  const store = new TokenStore({ path: env('CIC_TOKEN_FILE'), logger: log });
  const tokens = new TokenManager({ auth, store, deviceId: env('CIC_DEVICE_ID'), log });
  if (!(await tokens.start()).loggedIn) await tokens.login(env('CIC_ACCOUNT_TOKEN')); // pairing: once per device

  const client = new CicClient({
    url: env('CIC_URL'),
    userAgent: buildUserAgent({ manufacturer: 'Example', product: 'Speaker', firmware: '1.0.0', os: 'Linux', hardware: 'rpi4' }),
    tokens, readDirectives, ca, log,
  });
  client.start();
  try {
    await client.ready(); // downchannel open, Clova.Hello received
    const event = { namespace: 'TextRecognizer', name: 'Recognize', payload: { text: 'What time is it?' }, dialogRequestId: newDialogRequestId() };
    const result = await client.sendEvent(event);
    for (const { directive } of result.directives) console.log(`directive ${directive.header.namespace}.${directive.header.name}`);
  } finally {
    await client.stop();
    await tokens.close(); // waits for a refresh in flight: its rotated token must reach the store
  }
}

main().catch((err: unknown) => {
  console.error(isCicError(err) ? `${err.code}: ${err.message}` : err);
  process.exitCode = 1;
});
