// `npm run emulator`: starts the auth and CIC emulators on 127.0.0.1 with a generated CA and writes
// build/emulator.env, which configures the command line to use them:
//
//   npm run emulator &            # or in a second terminal
//   source build/emulator.env
//   printf "%s\n" "$CIC_DEMO_ACCOUNT" | node dist/cic-runtime.js login --account-token-file -
//   node dist/cic-runtime.js status
//   node dist/cic-runtime.js run
//
// The credentials in that file are the emulator's own, generated at start.
import { writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileTs } from './compile-ts.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

/**
 * Starts both emulators. `stateDir` holds the token file; `envFile: null` writes no settings
 * file (for callers that pass `env` on themselves, such as the emulated ARM run).
 */
export async function startEmulators({ quiet = false, secretsLog = null, stateDir = null, envFile: envFileOption } = {}) {
  await compileTs();
  const { testPki } = require(join(root, 'build/ts/test/support/certs.js'));
  const { AuthEmulator } = require(join(root, 'build/ts/test/emulator/auth-server.js'));
  const pki = testPki();
  const auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca, secretsLog });
  await auth.start();
  const { startCicEmulator } = require(join(root, 'build/ts/test/emulator/cic-server.js'));
  const cic = await startCicEmulator({ cert: pki.server.cert, key: pki.server.key, validateToken: (t) => auth.isValidAccessToken(t) });
  const account = auth.addAccount();
  const termsAccount = auth.addAccount({ termsAgreed: false });
  const dir = stateDir ?? join(root, 'build', 'emulator-state');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const env = {
    CIC_AUTH_URL: auth.url,
    CIC_URL: `https://127.0.0.1:${cic.port}`,
    CIC_CLIENT_ID: auth.clientId,
    CIC_CLIENT_SECRET: auth.clientSecret,
    CIC_DEVICE_ID: 'demo-device-0001',
    CIC_MODEL_ID: 'demo-model',
    CIC_USER_AGENT: 'CicRuntime/Demo/0.1.0 (Linux;Emulated;mode=demo)',
    CIC_CA_FILE: pki.caPath,
    CIC_TOKEN_FILE: join(dir, 'token'),
    CIC_DEMO_ACCOUNT: account,
    CIC_DEMO_ACCOUNT_TERMS: termsAccount,
    CIC_DEMO_CC_CLIENT_ID: auth.ccClients[0].clientId,
    CIC_DEMO_CC_CLIENT_SECRET: auth.ccClients[0].clientSecret,
    CIC_DEMO_CC_TOKEN_URL: auth.ccTokenUrl,
  };
  const envFile = envFileOption === undefined ? join(root, 'build', 'emulator.env') : envFileOption;
  if (envFile) writeFileSync(envFile, Object.entries(env).map(([k, v]) => `export ${k}='${v}'`).join('\n') + '\n', { mode: 0o600 });
  if (!quiet) {
    console.log(`auth emulator  ${auth.url}`);
    console.log(`CIC emulator   https://127.0.0.1:${cic.port}`);
    console.log(`settings       source ${envFile}`);
  }
  return { auth, cic, env, envFile, pki };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const emus = await startEmulators();
  console.log('running until Ctrl-C');
  const stop = async () => {
    await emus.auth.stop();
    await emus.cic.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  setInterval(() => {}, 1 << 30);
}
