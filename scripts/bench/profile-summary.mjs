// Where the time goes in a .cpuprofile (node --cpu-prof; `npm run bench -- --cpu-prof DIR`
// writes one per load client): self time by function and by area, as percentages.
//
//   node scripts/bench/profile-summary.mjs FILE.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';

const [file, ...rest] = process.argv.slice(2);
if (!file) {
  console.error('usage: node scripts/bench/profile-summary.mjs FILE.cpuprofile [--top N]');
  process.exit(2);
}
const top = rest.includes('--top') ? Number(rest[rest.indexOf('--top') + 1]) : 25;
const prof = JSON.parse(readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = prof.timeDeltas;
for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (dt[i] ?? 0));
const total = [...self.values()].reduce((a, b) => a + b, 0);

/** A coarse area for a frame, from its URL and name. */
function area(cf) {
  const url = cf.url || '';
  const name = cf.functionName || '(anonymous)';
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'native / not attributed (addon, libuv, OpenSSL)';
  if (/cic-runtime-bench\.js$/.test(url)) return 'bundle JS (runtime or harness)';
  if (/node:internal\/(tls|crypto)|node:_tls|node:tls/.test(url) || /^node:internal\/stream_base/.test(url)) return 'node: TLS / socket';
  if (/node:internal\/http2|node:http2/.test(url)) return 'node: http2';
  if (/node:internal\/(streams|stream)/.test(url)) return 'node: streams';
  if (/node:internal\/process\/task_queues|node:internal\/timers/.test(url)) return 'node: microtasks / timers';
  if (url.startsWith('node:')) return 'node: other';
  if (!url) return `builtin: ${name}`;
  return url;
}

const fn = new Map();
const areas = new Map();
for (const [id, t] of self) {
  const cf = byId.get(id).callFrame;
  const key = `${cf.functionName || '(anonymous)'}  ${(cf.url || '').replace(/^.*\//, '')}${cf.lineNumber >= 0 ? `:${cf.lineNumber + 1}:${cf.columnNumber + 1}` : ''}`;
  fn.set(key, (fn.get(key) ?? 0) + t);
  const a = area(cf);
  areas.set(a, (areas.get(a) ?? 0) + t);
}
const pct = (t) => `${((t / total) * 100).toFixed(1).padStart(5)} %`;
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
console.log('\nby area:');
for (const [a, t] of [...areas].sort((x, y) => y[1] - x[1])) console.log(`  ${pct(t)}  ${a}`);
console.log(`\ntop ${top} functions by self time:`);
for (const [k, t] of [...fn].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`  ${pct(t)}  ${k}`);
