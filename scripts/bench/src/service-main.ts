// `service` subcommand: the device service (src/service) over a real CicClient connected to
// the bench server, assembled as test/support/service-stack.ts does but with a static token
// source (the bench server accepts only BENCH_TOKEN, nothing refreshes it). Prints
// {"ready": true, "pid": N, "socket": PATH} once the client is ready (Clova.Hello in) and the
// socket is listening, then serves until SIGTERM/SIGINT (clean stop) or SIGKILL.
//
// Imported from src/ directly: DeviceService and RuntimeSupervisor are not part of the public
// library API (src/index.ts), and the bench must not widen that contract.
import { readFileSync } from 'node:fs';
import { CicClient, CicError, readDirectives, RUNTIME_VERSION } from '../../../src/index';
import type { TokenStatus } from '../../../src/auth/token-manager';
import { DeviceService } from '../../../src/service/server';
import { RuntimeSupervisor } from '../../../src/service/supervisor';
import { BENCH_TOKEN, BENCH_USER_AGENT } from './workload';

export interface ServiceArgs {
  url: string;
  caFile: string;
  socket: string;
  pingIntervalMs: number;
}

const STATIC_TOKEN_STATUS: TokenStatus = { state: 'valid', loggedIn: true, persisted: true, wallClockTrusted: true, deviceId: 'bench-device' };

export async function serviceMain(a: ServiceArgs): Promise<void> {
  const ca = readFileSync(a.caFile, 'utf8');
  const tokens = {
    start: () => Promise.resolve(STATIC_TOKEN_STATUS),
    status: () => STATIC_TOKEN_STATUS,
    login: () => Promise.reject(new CicError('ERR_INVALID_ARGUMENT', 'the bench service has a fixed token')),
    loginWithCode: () => Promise.reject(new CicError('ERR_INVALID_ARGUMENT', 'the bench service has a fixed token')),
  };
  const supervisor = new RuntimeSupervisor({
    tokens,
    waitForLogin: true,
    version: RUNTIME_VERSION,
    deviceId: 'bench-device',
    createClient: () =>
      new CicClient({
        url: a.url,
        userAgent: BENCH_USER_AGENT,
        tokens: {
          getAccessToken: () => Promise.resolve(BENCH_TOKEN),
          onUnauthorized: () => Promise.reject(new CicError('AUTH_INVALID_GRANT', 'the bench server refused the bench token')),
        },
        readDirectives,
        ca,
        caMode: 'only',
        pingIntervalMs: a.pingIntervalMs,
      }),
  });
  const service = new DeviceService({ runtime: supervisor, info: { name: 'cic-runtime', version: RUNTIME_VERSION, nghttp2: 'bench', node: process.version, target: `${process.platform}-${process.arch}` } });
  await service.listen(a.socket);
  let announced = false;
  supervisor.listen({
    state: (s) => {
      if (s.state === 'ready' && !announced) {
        announced = true;
        process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, socket: a.socket })}\n`);
      }
    },
  });
  supervisor.on('fatal', (e) => {
    process.stderr.write(`service: fatal ${e.code}: ${e.message}\n`);
    process.exit(1);
  });
  const stop = () => {
    // Bounded: a stop that hangs (a stuck drain) must not keep the orchestrator waiting.
    setTimeout(() => process.exit(0), 2000).unref();
    void service
      .close()
      .then(() => supervisor.stop())
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await supervisor.start();
}
