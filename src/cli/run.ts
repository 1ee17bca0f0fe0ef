// `cic-runtime run`: connect with the stored token and stay connected until SIGTERM/SIGINT.
// With `socketPath` it also serves the device socket (src/service), and a missing token or a
// dead grant waits for a login on that socket instead of ending the process.
import type { Readable, Writable } from 'node:stream';
import { CicError } from '../errors';
import { CicClient } from '../cic/client';
import { readDirectives } from '../cic/directive-reader';
import { loadBinding } from '../h2/native';
import { RUNTIME_VERSION } from '../version';
import { RuntimeSupervisor } from '../service/supervisor';
import { DeviceService } from '../service/server';
import type { RuntimeInfo } from '../service/handlers';
import { attachRunIo } from './run-io';
import { EXIT, exitCodeFor } from './exit-codes';
import { tokenManager, type Context } from './context';

export interface RunIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Emits SIGTERM / SIGINT (the process, in production). */
  signals: NodeJS.EventEmitter;
}

function runtimeInfo(): RuntimeInfo {
  return {
    name: 'cic-runtime',
    version: RUNTIME_VERSION,
    nghttp2: loadBinding().nghttp2Version(),
    node: process.version,
    target: `${process.platform}-${process.arch === 'arm' ? 'armv7' : process.arch}`,
  };
}

export async function run(ctx: Context, io: RunIo): Promise<number> {
  const c = ctx.config;
  const tm = tokenManager(ctx, { autoRefresh: true });
  const st = await tm.start();
  if (!st.loggedIn && !c.socketPath) {
    await tm.close();
    throw new CicError('AUTH_NOT_LOGGED_IN', `no stored token in ${c.tokenFile}; run \`cic-runtime login\` first`);
  }
  const supervisor = new RuntimeSupervisor({
    tokens: tm,
    waitForLogin: c.socketPath !== undefined,
    version: RUNTIME_VERSION,
    deviceId: c.deviceId,
    log: ctx.log,
    createClient: () => {
      const client = new CicClient({
        url: c.cicUrl!,
        userAgent: c.userAgent!,
        tokens: tm,
        readDirectives,
        ca: ctx.caPem,
        caMode: 'add',
        log: ctx.log,
        pingIntervalMs: c.pingIntervalMs,
        pingTimeoutMs: c.pingTimeoutMs,
        pingMode: c.pingMode,
        connectTimeoutMs: c.connectTimeoutMs,
        queueSize: c.eventQueueSize,
        queueMaxAgeMs: c.eventQueueMaxAgeMs,
        eventTimeoutMs: c.eventTimeoutMs,
      });
      client.on('ping', (rttMs) => ctx.log.debug('ping', { rttMs }));
      return client;
    },
  });
  tm.on('warning', (w) => ctx.log.warn('token warning', { code: w.code, message: w.message }));

  // The socket first: a path in use or not a socket is a configuration error before anything
  // connects (exit 2, the path untouched).
  let service: DeviceService | undefined;
  if (c.socketPath) {
    service = new DeviceService({ runtime: supervisor, info: runtimeInfo(), log: ctx.log });
    try {
      await service.listen(c.socketPath);
    } catch (e) {
      await tm.close();
      throw e;
    }
  }
  const lines = attachRunIo({ runtime: supervisor, stdin: io.stdin, stdout: io.stdout, stderr: io.stderr, log: ctx.log });

  return new Promise<number>((resolve) => {
    let finished = false;
    const finish = async (code: number) => {
      if (finished) return;
      finished = true;
      io.signals.off('SIGTERM', onSignal);
      io.signals.off('SIGINT', onSignal);
      lines.close();
      await service?.close();
      await supervisor.stop();
      await tm.close();
      resolve(code);
    };
    const onSignal = (sig: string) => {
      ctx.log.info('stopping', { signal: sig });
      void finish(EXIT.OK);
    };
    io.signals.on('SIGTERM', onSignal);
    io.signals.on('SIGINT', onSignal);
    supervisor.on('fatal', (err) => void finish(exitCodeFor(err)));
    supervisor.start().catch((e: unknown) => {
      ctx.log.error('cannot start', { code: e instanceof CicError ? e.code : 'ERR_INTERNAL', message: e instanceof Error ? e.message : String(e) });
      void finish(exitCodeFor(e));
    });
  });
}
