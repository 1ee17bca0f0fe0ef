// h2load (Debian nghttp2-client) as the native floor: the same event body POSTed over one TLS
// connection, 1 or N in flight. Its CPU comes from the shell's `times` builtin (children's
// user + system), so it includes h2load's start-up and its one TLS handshake — under 0.5 µs
// per request at the default request counts.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_TOKEN, BENCH_USER_AGENT, eventMetadataJson } from './workload';

export interface H2loadResult {
  requests: number;
  inFlight: number;
  cpuUsPerRequest: number;
  meanMs: number;
  succeeded: number;
}

export function h2loadVersion(): string | undefined {
  const r = spawnSync('h2load', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout.trim().split('\n')[0];
}

/** Writes the request body h2load sends with every request; returns its content type. */
export function writeH2loadBody(dir: string): { file: string; contentType: string } {
  const boundary = 'cic-h2load0123456789abcdefghijklmnopqrstuv';
  const metadata = eventMetadataJson('00000000-0000-4000-8000-000000000000');
  const file = join(dir, 'event-body.bin');
  writeFileSync(
    file,
    `--${boundary}\r\nContent-Disposition: form-data; name="metadata"\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${metadata}\r\n--${boundary}--\r\n`,
  );
  return { file, contentType: `multipart/form-data; boundary=${boundary}` };
}

function seconds(s: string): number {
  const m = /^(\d+)m([\d.]+)s$/.exec(s);
  return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
}

export function runH2load(o: { url: string; requests: number; inFlight: number; body: { file: string; contentType: string }; pin: string[]; env: NodeJS.ProcessEnv }): H2loadResult {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const cmd = [
    'h2load', '-n', String(o.requests), '-c', '1', '-t', '1', '-m', String(o.inFlight), '-d', q(o.body.file),
    '-H', q(`authorization: Bearer ${BENCH_TOKEN}`), '-H', q(`user-agent: ${BENCH_USER_AGENT}`), '-H', q(`content-type: ${o.body.contentType}`),
    q(`${o.url}/v1/events`),
  ].join(' ');
  const r = spawnSync(o.pin[0] ?? 'bash', [...o.pin.slice(1), ...(o.pin.length ? ['bash'] : []), '-c', `${cmd}; echo '#times'; times`], {
    encoding: 'utf8',
    env: o.env,
    timeout: 600_000,
  });
  if (r.error || r.status !== 0) throw new Error(`h2load failed: ${r.error?.message ?? r.status}: ${(r.stdout + r.stderr).slice(-800)}`);
  const text = r.stdout;
  const times = text.slice(text.lastIndexOf('#times')).trim().split('\n');
  const [user, sys] = (times[2] ?? '').trim().split(/\s+/).map(seconds); // line 2: children
  const succeeded = Number(/requests: .*?(\d+) succeeded/.exec(text)?.[1] ?? NaN);
  const twoxx = Number(/status codes: (\d+) 2xx/.exec(text)?.[1] ?? NaN);
  if (succeeded !== o.requests || twoxx !== o.requests) throw new Error(`h2load: ${succeeded} succeeded, ${twoxx} 2xx of ${o.requests}: ${text.slice(-600)}`);
  const mean = /time for request:\s+\S+\s+\S+\s+(\S+)/.exec(text)?.[1] ?? '';
  const meanMs = mean.endsWith('us') ? Number.parseFloat(mean) / 1000 : mean.endsWith('ms') ? Number.parseFloat(mean) : Number.parseFloat(mean) * 1000;
  return { requests: o.requests, inFlight: o.inFlight, cpuUsPerRequest: ((user! + sys!) * 1e6) / o.requests, meanMs, succeeded };
}
