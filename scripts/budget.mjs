// Size budgets of the release files, and what each layer of the command-line bundle costs.
//
// A device keeps the runtime on flash next to everything else, and a budget that is only
// reported creeps: `node scripts/build.mjs --check-budget` (what .ci/run runs) fails when a
// total is exceeded. The per-layer figures come from esbuild's metafile (bytes each source file
// contributes to the minified output); they are reported against their own budgets so a
// growing layer is visible before the total breaks, but only the totals fail the build.
import { gzipSync } from 'node:zlib';
import { readFileSync, statSync } from 'node:fs';

const KiB = 1024;

export const BUDGETS = {
  bundleBytes: 140 * KiB, // dist/cic-runtime.js, minified
  bundleGzipBytes: 48 * KiB, // the same, gzip -9: what an OTA image or a compressed flash pays
  addonBytes: 400 * KiB, // one stripped .node per target
};

/**
 * What --check-budget enforces on the command-line bundle while it misses BUDGETS: the size
 * it reached with the device service and attachment streaming, plus about 2 %. It stops creep;
 * it is not a target (the README's size table gives the miss by layer). Remove it when the
 * bundle fits BUDGETS again or the budget is changed.
 */
export const BUNDLE_CEILINGS = {
  bundleBytes: 176 * KiB,
  bundleGzipBytes: 58 * KiB,
};

/** The layers of src/ (ARCHITECTURE.md), in the order the report prints them. */
export const LAYERS = [
  { name: 'h2', budget: 19 * KiB, match: (p) => p.startsWith('src/h2/'), what: 'HTTP/2 connection, streams, addon loader, precise clock' },
  { name: 'cic', budget: 49 * KiB, match: (p) => p.startsWith('src/cic/'), what: 'CIC client, directives and attachments, multipart, events, keepalive, User-Agent' },
  { name: 'auth', budget: 38 * KiB, match: (p) => p.startsWith('src/auth/'), what: 'Clova auth, client credentials, token manager, token store' },
  { name: 'service', budget: 28 * KiB, match: (p) => p.startsWith('src/service/'), what: 'the local socket API (Wyoming framing, sessions, hub)' },
  {
    name: 'cli',
    budget: 42 * KiB,
    match: (p) => p.startsWith('src/cli') || p.startsWith('src/util/') || ['src/config.ts', 'src/errors.ts', 'src/log.ts', 'src/version.ts'].includes(p),
    what: 'command line, configuration, error table, logging, file and device-id helpers',
  },
  { name: 'deps', budget: 1 * KiB, match: (p) => p.includes('node_modules/'), what: 'JavaScript dependencies (tiny-typed-emitter)' },
];

/** Bytes per layer of one output of an esbuild metafile; `other` is esbuild's own glue. */
export function layerSizes(metafile, outfile) {
  const key = Object.keys(metafile.outputs).find((k) => outfile.endsWith(k) || k.endsWith(outfile.split('/').slice(-2).join('/')));
  if (!key) throw new Error(`budget: ${outfile} is not an output of this build`);
  const out = metafile.outputs[key];
  const sizes = Object.fromEntries(LAYERS.map((l) => [l.name, 0]));
  let counted = 0;
  for (const [input, { bytesInOutput }] of Object.entries(out.inputs)) {
    const layer = LAYERS.find((l) => l.match(input));
    if (!layer) throw new Error(`budget: ${input} belongs to no layer (scripts/budget.mjs LAYERS)`);
    sizes[layer.name] += bytesInOutput;
    counted += bytesInOutput;
  }
  sizes.other = out.bytes - counted;
  return sizes;
}

const kib = (n) => `${(n / KiB).toFixed(1)} KiB`;

/**
 * Checks one file against a byte budget (and optionally a gzip budget); prints one line per
 * figure. Returns the list of problems (empty: within budget).
 */
export function checkFile(file, { bytes, gzipBytes, label = file }) {
  const size = statSync(file).size;
  const problems = [];
  let line = `budget: ${label}  ${kib(size)} (budget ${kib(bytes)})`;
  if (size > bytes) problems.push(`${label} is ${kib(size)}, over its ${kib(bytes)} budget`);
  if (gzipBytes !== undefined) {
    const gz = gzipSync(readFileSync(file), { level: 9 }).length;
    line += `, gzip ${kib(gz)} (budget ${kib(gzipBytes)})`;
    if (gz > gzipBytes) problems.push(`${label} is ${kib(gz)} gzipped, over its ${kib(gzipBytes)} budget`);
  }
  console.log(problems.length ? `${line}  OVER BUDGET` : line);
  return problems;
}

/** Prints the per-layer table of the command-line bundle (reported, not enforced). */
export function reportLayers(sizes) {
  for (const l of LAYERS) {
    const over = sizes[l.name] > l.budget ? '  over its layer budget' : '';
    console.log(`budget:   ${l.name.padEnd(8)} ${kib(sizes[l.name]).padStart(10)} of ${kib(l.budget)}  ${l.what}${over}`);
  }
  console.log(`budget:   ${'other'.padEnd(8)} ${kib(sizes.other).padStart(10)}          esbuild module glue`);
}
