// Child process for test/faults/40-refresh-sigkill: a real TokenManager over the real
// TokenStore (file) and ClovaAuthClient (TLS to the auth emulator in the parent), refreshing
// in a loop until the parent SIGKILLs it. Tokens never leave this process in clear: lines
// carry an 8-byte SHA-256 prefix of the access token. Protocol on stdout, one JSON line each:
//   {"t":"start","state","at"}            after start(): what a fresh process loaded
//   {"t":"first","at"} | {"t":"first-failed","code","state","lastError","afterDead"}
//                                         the first refresh with the loaded refresh token; on
//                                         failure the child logs in again ({"t":"relogin",…})
//                                         and refreshes once more ({"t":"first",…})
//   {"t":"go"}                            the kill clock starts; refreshes follow back to back
//   {"t":"refreshed","at","persisted"}    a refresh returned (its tokens are saved)
//   {"t":"warning","code"}                the manager's 'warning' event
// Env: CIC_FAULT_AUTH_URL, CIC_FAULT_CLIENT_ID, CIC_FAULT_CLIENT_SECRET, CIC_FAULT_CA_FILE,
// CIC_FAULT_DEVICE, CIC_FAULT_ACCOUNT (account credential for the re-login); argv[2] = token file.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ClovaAuthClient } from '../../src/auth/clova-auth';
import { TokenManager } from '../../src/auth/token-manager';
import { TokenStore } from '../../src/auth/token-store';
import { isCicError } from '../../src/errors';

export function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 16);
}

const MAX_REFRESHES = 10_000; // an orphaned child must not refresh forever

function line(o: object): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

async function main(path: string): Promise<void> {
  process.stdout.on('error', () => process.exit(0));
  const env = (k: string) => {
    const v = process.env[k];
    if (!v) throw new Error(`${k} is not set`);
    return v;
  };
  const auth = new ClovaAuthClient({
    authUrl: env('CIC_FAULT_AUTH_URL'),
    clientId: env('CIC_FAULT_CLIENT_ID'),
    clientSecret: env('CIC_FAULT_CLIENT_SECRET'),
    deviceId: env('CIC_FAULT_DEVICE'),
    caPem: readFileSync(env('CIC_FAULT_CA_FILE'), 'utf8'),
    retry: { maxAttempts: 1 },
  });
  const store = new TokenStore({ path });
  const manager = new TokenManager({ auth, store, deviceId: env('CIC_FAULT_DEVICE'), autoRefresh: false });
  manager.on('warning', (w) => line({ t: 'warning', code: w.code }));
  const status = await manager.start();
  const at = status.loggedIn ? fingerprint(await manager.getAccessToken()) : null;
  line({ t: 'start', state: status.state, at });
  try {
    line({ t: 'first', at: fingerprint(await manager.forceRefresh()) });
  } catch (e) {
    const s = manager.status();
    // What the runtime tells its user when the stored refresh token is dead — and whether the
    // stored access token is still handed out afterwards.
    let after: string | null = null;
    try {
      after = fingerprint(await manager.getAccessToken());
    } catch (e2) {
      after = isCicError(e2) ? e2.code : 'not-coded';
    }
    line({ t: 'first-failed', code: isCicError(e) ? e.code : 'not-coded', state: s.state, lastError: s.lastError?.code ?? null, afterDead: after });
    // The device pairs again (what the user is asked to do), then goes on like any round.
    const r = await manager.login(env('CIC_FAULT_ACCOUNT'));
    line({ t: 'relogin', persisted: r.persisted, state: manager.state, at: fingerprint(await manager.getAccessToken()) });
    line({ t: 'first', at: fingerprint(await manager.forceRefresh()) });
  }
  line({ t: 'go' });
  for (let i = 0; i < MAX_REFRESHES; i++) {
    const token = await manager.forceRefresh();
    line({ t: 'refreshed', at: fingerprint(token), persisted: manager.status().persisted });
  }
}

if (require.main === module) {
  const path = process.argv[2];
  if (!path) {
    process.stderr.write('usage: 40-refresh-child <token-file>\n');
    process.exit(2);
  }
  main(path).catch((e) => {
    process.stderr.write(`child failed: ${isCicError(e) ? e.code : e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
