// Release build: one minified esbuild file per entry in dist/, the addon beside it named by
// target, stripped, and the size budgets checked.
//
//   node scripts/build.mjs [--addon PATH --target linux-arm64 [--strip TOOL]] [--check-budget]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, statSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { releaseBuildOptions } from './release-options.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

export const BUDGET = {
  bundleBytes: 80 * 1024, // dist/cic-runtime.js, minified
  addonBytes: 400 * 1024, // one stripped .node per target
};

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

function hostTarget() {
  return `${process.platform}-${process.arch === 'arm' ? 'armv7' : process.arch}`;
}

export async function bundle() {
  mkdirSync(dist, { recursive: true });
  const common = await releaseBuildOptions();
  await build({ ...common, entryPoints: [join(root, 'src/cli.ts')], outfile: join(dist, 'cic-runtime.js'), banner: { js: '#!/usr/bin/env node' } });
  chmodSync(join(dist, 'cic-runtime.js'), 0o755);
  return join(dist, 'cic-runtime.js');
}

/** Copies an addon into dist/ under its target name and strips it. */
export function placeAddon(addon, target, stripTool = 'strip') {
  const out = join(dist, `cic-runtime.${target}.node`);
  mkdirSync(dist, { recursive: true });
  copyFileSync(addon, out);
  try {
    execFileSync(stripTool, ['--strip-unneeded', out]);
  } catch (e) {
    console.error(`build: could not strip ${out} with ${stripTool}: ${e.message}`);
  }
  return out;
}

export function checkBudget(file, limit) {
  const size = statSync(file).size;
  const ok = size <= limit;
  console.log(`build: ${file.replace(root, '')}  ${(size / 1024).toFixed(1)} KiB  (budget ${(limit / 1024).toFixed(0)} KiB)${ok ? '' : '  OVER BUDGET'}`);
  return ok;
}

async function main() {
  const js = await bundle();
  await (await import('./bench/bundle.mjs')).buildBenchBundle(); // dist/cic-runtime-bench.js
  const addonSrc = arg('--addon') ?? join(root, 'build/Release/cic_h2.node');
  const target = arg('--target') ?? hostTarget();
  let ok = checkBudget(js, BUDGET.bundleBytes);
  if (existsSync(addonSrc)) {
    const node = placeAddon(addonSrc, target, arg('--strip'));
    ok = checkBudget(node, BUDGET.addonBytes) && ok;
  } else {
    console.error(`build: no addon at ${addonSrc} (run npm install); bundle only`);
  }
  if (!ok) {
    console.error(`build: size budget exceeded${args.includes('--check-budget') ? '' : ' (reported only; --check-budget makes it fatal)'}`);
    if (args.includes('--check-budget')) process.exit(1);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
