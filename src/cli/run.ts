// `cic-runtime run`: connect with the stored token and stay connected until SIGTERM/SIGINT.
import type { Readable, Writable } from 'node:stream';
import { CicError } from '../errors';
import { CicClient } from '../cic/client';
import { readDirectives } from '../cic/directive-reader';
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

export async function run(ctx: Context, io: RunIo): Promise<number> {
  const c = ctx.config;
  const tm = tokenManager(ctx, { autoRefresh: true });
  const st = await tm.start();
  if (!st.loggedIn) {
    await tm.close();
    throw new CicError('AUTH_NOT_LOGGED_IN', `no stored token in ${c.tokenFile}; run \`cic-runtime login\` first`);
  }
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
  tm.on('warning', (w) => ctx.log.warn('token warning', { code: w.code, message: w.message }));
  client.on('ping', (rttMs) => ctx.log.debug('ping', { rttMs }));
  const lines = attachRunIo({ client, stdin: io.stdin, stdout: io.stdout, stderr: io.stderr, log: ctx.log });

  return new Promise<number>((resolve) => {
    let finished = false;
    const finish = async (code: number) => {
      if (finished) return;
      finished = true;
      io.signals.off('SIGTERM', onSignal);
      io.signals.off('SIGINT', onSignal);
      lines.close();
      await client.stop();
      await tm.close();
      resolve(code);
    };
    const onSignal = (sig: string) => {
      ctx.log.info('stopping', { signal: sig });
      void finish(EXIT.OK);
    };
    io.signals.on('SIGTERM', onSignal);
    io.signals.on('SIGINT', onSignal);
    client.on('state', (ch) => {
      if (ch.to === 'closed' && !finished) void finish(exitCodeFor(client.closeError));
    });
    client.start();
  });
}
