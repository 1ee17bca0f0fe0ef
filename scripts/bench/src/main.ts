// Entry of dist/cic-runtime-bench.js: the benchmark orchestrator (default), the bench CIC
// server and the per-process clients, chosen by the first argument. Each part is required
// lazily, so a client process initialises only its own contender: the runtime process never
// loads node:http2, the baseline never loads the runtime or its addon.
import { readFileSync } from 'node:fs';
import { BenchArgs } from './args';
import type { ClientArgs } from './client-main';
import type { CaMode, ContenderKind } from './contender';

const FLAGS = new Set(['quick', 'no-pin', 'no-h2load', 'no-strace', 'keep-extra-ca', 'help']);

export const USAGE = `usage: node cic-runtime-bench.js [run] [options]
  One command, three contenders: the runtime (CicClient from the bundle), a node:http2 client
  doing the same job, and h2load when installed, against one TLS CIC server on loopback.

  --reps N             interleaved repetitions (default 5; --quick 2)
  --quick              smoke run: fewer events, 3 s idle
  --json FILE          also write JSON to FILE and the ratio chart to FILE with .svg
  --url https://H:P    use an external bench server (device mode); --ca FILE is its CA
  --ca FILE --cert FILE --key FILE   TLS identity of the local server (default: embedded)
  --idle-seconds S     idle window with the downchannel open, between the 1st and 2nd
                       keepalive PING (default 30; the idle PING interval is S + 2 s unless
                       --idle-ping-interval-ms); --strace-seconds S (default 10) between the
                       2nd and 3rd PING; --no-strace
  --seq-events N --conc-events N --concurrency C --warmup N --pings N --heap-events N
  --ping-interval-ms MS   keepalive PING interval of both contenders (default 60000)
  --phases cold,load,idle,h2load,service   subset of the measurements
  --service-samples N  attachments timed in the service phase (default 50; --quick 10),
                       --audio-chunks N (default 200; --quick 40), --transfer-mib N (10)
  --no-pin             no taskset pinning;  --no-h2load   skip h2load
  --keep-extra-ca      keep NODE_EXTRA_CA_CERTS for the contenders (default: removed for all)
  --client-exec "CMD ARGS"   run clients (and the bare node) with this instead of this node,
                       e.g. "qemu-aarch64-static /path/to/arm64/node"; --client-env K=V
  --timeout-scale N    multiply timeouts;  --cpu-prof DIR   --cpu-prof the load clients
  --label TEXT         free text for the report header
  server --cert F --key F [--port P] [--host H]   the bench CIC server alone
  service --url https://H:P --ca-file F --socket PATH [--ping-interval-ms MS]
                       the device service over a CicClient (what the service phase drives)`;

function clientArgs(a: BenchArgs): ClientArgs {
  const need = (n: string) => {
    const v = a.str(n);
    if (v === undefined) throw new Error(`client: --${n} is required`);
    return v;
  };
  return {
    kind: need('kind') as ContenderKind | 'none',
    mode: need('mode') as ClientArgs['mode'],
    url: need('url'),
    caFile: need('ca-file'),
    caMode: (a.str('ca-mode') ?? 'pinned') as CaMode,
    seqEvents: a.num('seq-events', 10_000),
    concEvents: a.num('conc-events', 20_000),
    concurrency: a.num('concurrency', 16),
    warmup: a.num('warmup', 500),
    pingRounds: a.num('pings', 1000),
    heapEvents: a.num('heap-events', 2000),
    pingIntervalMs: a.num('ping-interval-ms', 60_000),
  };
}

async function main(argv: string[]): Promise<number> {
  const a = new BenchArgs(argv, FLAGS);
  const cmd = a.positional[0] ?? 'run';
  if (a.flag('help')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (cmd === 'client') {
    const { clientMain } = require('./client-main') as typeof import('./client-main');
    await clientMain(clientArgs(a));
    return -1; // the client exits by itself
  }
  if (cmd === 'server') {
    const { serverMain } = require('./server') as typeof import('./server');
    const cert = a.str('cert');
    const key = a.str('key');
    if (!cert || !key) throw new Error('server: --cert and --key are required');
    await serverMain({ cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8'), host: a.str('host'), port: a.num('port', 0) });
    return -1;
  }
  if (cmd === 'service') {
    const { serviceMain } = require('./service-main') as typeof import('./service-main');
    const need = (n: string) => {
      const v = a.str(n);
      if (v === undefined) throw new Error(`service: --${n} is required`);
      return v;
    };
    await serviceMain({ url: need('url'), caFile: need('ca-file'), socket: need('socket'), pingIntervalMs: a.num('ping-interval-ms', 60_000) });
    return -1;
  }
  if (cmd === 'run') {
    const { benchOptions, orchestrate } = require('./orchestrator') as typeof import('./orchestrator');
    return orchestrate(benchOptions(a));
  }
  throw new Error(`unknown command ${cmd}\n${USAGE}`);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (e: Error) => {
    process.stderr.write(`bench: error: ${e.message}\n`);
    process.exit(1);
  },
);
