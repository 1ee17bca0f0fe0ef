// Release build: one minified esbuild file per entry in dist/, the addon beside it named by
// target, stripped, and the size budgets checked. dist/ is what the npm package ships:
//
//   dist/cic-runtime.js             the command line (package "bin", `cic-runtime/cli`)
//   dist/cic-runtime-lib.js         the library (`require('cic-runtime')`, src/index.ts)
//   dist/types/                     its declarations (tsconfig.lib.json)
//   dist/cic-runtime.<target>.node  the addon, found by both bundles beside themselves
//
//   node scripts/build.mjs [--addon PATH --target linux-arm64 [--strip TOOL]] [--check-budget]
import { build, transform } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { releaseBuildOptions } from './release-options.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = join(root, 'dist');

import { BUDGETS, BUNDLE_CEILINGS, checkFile, layerSizes, reportLayers } from './budget.mjs';

/** Kept for scripts/cross.mjs: the addon budget per target. */
export const BUDGET = { addonBytes: BUDGETS.addonBytes };

const args = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

export function hostTarget() {
  return `${process.platform}-${process.arch === 'arm' ? 'armv7' : process.arch}`;
}

/** The command-line bundle; `lastBundleMetafile` keeps esbuild's account of it for the budget. */
export let lastBundleMetafile;
export async function bundle() {
  mkdirSync(dist, { recursive: true });
  const common = await releaseBuildOptions();
  // The banner enables Node's compile cache before the bundle proper runs (see the file).
  // "use strict" first: a directive after the banner would no longer be one.
  const banner = (await transform(readFileSync(join(root, 'src/compile-cache-banner.js'), 'utf8'), { minify: true, target: 'node18' })).code;
  const result = await build({ ...common, metafile: true, entryPoints: [join(root, 'src/cli.ts')], outfile: join(dist, 'cic-runtime.js'), banner: { js: `#!/usr/bin/env node\n"use strict";${banner}` } });
  lastBundleMetafile = result.metafile;
  chmodSync(join(dist, 'cic-runtime.js'), 0o755);
  return join(dist, 'cic-runtime.js');
}

export const libraryPath = join(dist, 'cic-runtime-lib.js');
export const typesDir = join(dist, 'types');

/**
 * The library bundle. It must sit in dist/ itself: loadBinding() looks for the addon beside
 * the running file. Differences from the CLI bundle, each for an embedding application:
 * - No property mangling. A mangled private member gets a one-letter name that a subclass
 *   in the application could reuse without any compiler noticing, and the declarations
 *   would no longer describe the objects (dist/types lists private members by name).
 * - Class and function names kept, so stack traces and util.inspect() name CicClient,
 *   TokenManager… in the application's logs.
 * - tiny-typed-emitter stays a require() of the package dependency: the declarations
 *   import it too, so it has to be installed anyway.
 */
export async function bundleLibrary() {
  mkdirSync(dist, { recursive: true });
  const common = await releaseBuildOptions();
  await build({
    ...common,
    mangleProps: undefined,
    keepNames: true,
    external: ['tiny-typed-emitter'],
    entryPoints: [join(root, 'src/index.ts')],
    outfile: libraryPath,
  });
  return libraryPath;
}

/**
 * Declarations of the library (tsconfig.lib.json: src/index.ts and what it reaches) into
 * dist/types. The directory is emptied first: the .d.ts of a module since removed from
 * src/ must not ship.
 */
export async function emitDeclarations() {
  const { default: ts } = await import('typescript');
  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.lib.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(`build: tsconfig.lib.json: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    },
  });
  rmSync(typesDir, { recursive: true, force: true });
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options });
  const result = program.emit();
  const problems = [...config.errors, ...result.diagnostics];
  if (result.emitSkipped || problems.length) {
    const text = ts.formatDiagnostics(problems, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => root, getNewLine: () => '\n' });
    throw new Error(`build: declarations for dist/types failed\n${text}`);
  }
  return join(typesDir, 'index.d.ts');
}

/**
 * Copies an addon into dist/ under its target name and strips it. The file is replaced by a
 * rename, never rewritten in place: a process that has the previous one loaded (a test, the
 * demo) maps it, and changing those pages under it crashes that process with SIGBUS.
 */
export function placeAddon(addon, target, stripTool = 'strip') {
  const out = join(dist, `cic-runtime.${target}.node`);
  const tmp = `${out}.tmp-${process.pid}`;
  mkdirSync(dist, { recursive: true });
  copyFileSync(addon, tmp);
  try {
    execFileSync(stripTool, ['--strip-unneeded', tmp]);
  } catch (e) {
    console.error(`build: could not strip ${out} with ${stripTool}: ${e.message}`);
  }
  renameSync(tmp, out);
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
  const lib = await bundleLibrary();
  await emitDeclarations();
  await (await import('./bench/bundle.mjs')).buildBenchBundle(); // dist/cic-runtime-bench.js
  const addonSrc = arg('--addon') ?? join(root, 'build/Release/cic_h2.node');
  const target = arg('--target') ?? hostTarget();
  // The bundle's target is reported; while it is missed, the ceiling is what fails the build.
  const missed = checkFile(js, { bytes: BUDGETS.bundleBytes, gzipBytes: BUDGETS.bundleGzipBytes, label: 'dist/cic-runtime.js (target)' });
  const problems = missed.length ? checkFile(js, { bytes: BUNDLE_CEILINGS.bundleBytes, gzipBytes: BUNDLE_CEILINGS.bundleGzipBytes, label: 'dist/cic-runtime.js (ceiling)' }) : [];
  for (const m of missed) console.error(`build: target missed: ${m}`);
  reportLayers(layerSizes(lastBundleMetafile, js));
  console.log(`build: ${lib.replace(root, '')}  ${(statSync(lib).size / 1024).toFixed(1)} KiB  (library; declarations in dist/types/)`);
  if (existsSync(addonSrc)) {
    const node = placeAddon(addonSrc, target, arg('--strip'));
    problems.push(...checkFile(node, { bytes: BUDGETS.addonBytes, label: node.replace(`${root}/`, '') }));
  } else {
    console.error(`build: no addon at ${addonSrc} (run npm install); bundle only`);
  }
  if (problems.length) {
    for (const p of problems) console.error(`build: ${p}`);
    console.error(`build: size budget exceeded${args.includes('--check-budget') ? '' : ' (reported only; --check-budget makes it fatal)'}`);
    if (args.includes('--check-budget')) process.exit(1);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
