// The runtime as `run --socket` builds it, in-process: token manager (real store on a temp
// file, auth emulator), runtime supervisor (real CicClient against the CIC emulator) and the
// device service on a real Unix socket. Service timers run on a fake clock.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClovaAuthClient } from '../../src/auth/clova-auth';
import { TokenManager } from '../../src/auth/token-manager';
import { TokenStore } from '../../src/auth/token-store';
import { CicClient } from '../../src/cic/client';
import { readDirectives } from '../../src/cic/directive-reader';
import { createLogger } from '../../src/log';
import { DeviceService } from '../../src/service/server';
import { RuntimeSupervisor } from '../../src/service/supervisor';
import type { RuntimeStatus } from '../../src/service/status';
import type { ServiceLimits } from '../../src/service/limits';
import type { AuthEmulator } from '../emulator/auth-server';
import type { CicEmulator } from '../emulator/cic-server';
import { testPki } from './certs';
import { FakeClock } from './fake-clock';
import { SocketClient, until } from './socket-client';

export const STACK_DEVICE = 'svc-test-device';
export const STACK_UA = 'Test/Service/1.0.0 (Linux;ci)';

export interface Stack {
  tm: TokenManager;
  supervisor: RuntimeSupervisor;
  service: DeviceService;
  clock: FakeClock;
  path: string;
  tokenFile: string;
  logs: Array<Record<string, any>>;
  states: RuntimeStatus[];
  connect(): Promise<SocketClient>;
  waitState(state: string, from?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startStack(auth: AuthEmulator, cic: CicEmulator, options: { login?: boolean; limits?: Partial<ServiceLimits> } = {}): Promise<Stack> {
  const pki = testPki();
  const dir = mkdtempSync(join(tmpdir(), 'cic-stack-'));
  const tokenFile = join(dir, 'token');
  const logs: Array<Record<string, any>> = [];
  const log = createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l)) });
  const clock = new FakeClock();
  const tm = new TokenManager({
    auth: new ClovaAuthClient({ authUrl: auth.url, clientId: auth.clientId, clientSecret: auth.clientSecret, deviceId: STACK_DEVICE, caPem: pki.ca, log }),
    store: new TokenStore({ path: tokenFile, logger: log }),
    log,
    deviceId: STACK_DEVICE,
  });
  if (options.login !== false) await tm.login(auth.addAccount());
  const supervisor = new RuntimeSupervisor({
    tokens: tm,
    waitForLogin: true,
    version: '0.0.0-test',
    deviceId: STACK_DEVICE,
    log,
    createClient: () => new CicClient({ url: cic.url, userAgent: STACK_UA, tokens: tm, readDirectives, ca: pki.ca, caMode: 'only', log, backoff: { baseMs: 50, maxMs: 200 } }),
  });
  const states: RuntimeStatus[] = [];
  supervisor.listen({ state: (s) => states.push(s) });
  const service = new DeviceService({ runtime: supervisor, info: { name: 'cic-runtime', version: '0.0.0-test', nghttp2: '1.64.0', node: process.version, target: 'test' }, clock, log, limits: options.limits });
  const path = join(dir, 'cic.sock');
  await service.listen(path);
  const clients: SocketClient[] = [];
  return {
    tm,
    supervisor,
    service,
    clock,
    path,
    tokenFile,
    logs,
    states,
    async connect() {
      const c = await SocketClient.connect(path);
      clients.push(c);
      await until(() => service.stats().accepted >= clients.length, 'the service to accept');
      return c;
    },
    async waitState(state, from = 0) {
      await until(() => states.slice(from).some((s) => s.state === state), `state ${state}`, 20_000);
    },
    async stop() {
      for (const c of clients) c.destroy();
      await service.close();
      await supervisor.stop();
      await tm.close();
    },
  };
}
