// The runtime's version: injected by the bundler; in a checkout read from the nearest
// package.json above this file (source and transpiled trees sit at different depths).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

declare const __CIC_VERSION__: string | undefined;

function fromPackageJson(): string {
  for (let dir = __dirname, i = 0; i < 6; i++, dir = dirname(dir)) {
    const p = join(dir, 'package.json');
    if (!existsSync(p)) continue;
    const pkg = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'cic-runtime' && pkg.version) return pkg.version;
  }
  return '0.0.0-unknown';
}

export const RUNTIME_VERSION: string = typeof __CIC_VERSION__ === 'string' ? __CIC_VERSION__ : fromPackageJson();
