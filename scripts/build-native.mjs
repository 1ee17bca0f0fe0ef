// Builds the addon for the host (node-gyp), then proves it carries its own nghttp2:
// no dynamic nghttp2_ symbol may be imported or exported.
//
//   node scripts/build-native.mjs [--debug] [--quiet]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const debug = process.argv.includes('--debug');

/** Node's headers shipped with the running node (Debian/NodeSource layout), if present. */
export function localNodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include/node/common.gypi')) ? prefix : undefined;
}

export function nodeGyp() {
  const local = join(root, 'node_modules/.bin/node-gyp');
  return existsSync(local) ? local : 'node-gyp';
}

/** Dynamic symbols of `file` that mention nghttp2_ (imports and exports). */
export function nghttp2DynamicSymbols(file, nm = 'nm') {
  const out = execFileSync(nm, ['-D', file], { encoding: 'utf8' });
  return out.split('\n').filter((l) => /\bnghttp2_/.test(l));
}

function main() {
  const args = ['rebuild', `--jobs=${Math.max(1, Math.min(4, Number(process.env.JOBS) || 2))}`];
  const nodedir = localNodeDir();
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  if (debug) args.push('--debug');
  const r = spawnSync(nodeGyp(), args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) {
    console.error('build-native: node-gyp failed');
    process.exit(r.status ?? 1);
  }
  const addon = join(root, 'build', debug ? 'Debug' : 'Release', 'cic_h2.node');
  const leaked = nghttp2DynamicSymbols(addon);
  if (leaked.length) {
    console.error(`build-native: ${addon} has dynamic nghttp2 symbols:\n${leaked.join('\n')}`);
    process.exit(1);
  }
  const require = createRequire(import.meta.url);
  const binding = require(addon);
  console.log(`build-native: ${addon} (nghttp2 ${binding.nghttp2Version()} inside, no dynamic nghttp2_ symbols)`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
