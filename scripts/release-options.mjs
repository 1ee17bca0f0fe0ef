// esbuild settings shared by every bundle in dist/ (the release bundle, the bench bundle),
// computed once per process: the private-name analysis runs the type checker over src/.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

let releaseOptions;

export async function releaseBuildOptions() {
  if (releaseOptions) return releaseOptions;
  const { privateNames } = await import('./private-names.mjs');
  const mangled = privateNames();
  releaseOptions = {
    // Only names the type checker proves are private members anywhere in src/ (see
    // scripts/private-names.mjs): esbuild leaves TypeScript `private` names at full length.
    mangleProps: mangled.length ? new RegExp(`^(${mangled.join('|')})$`) : undefined,
    bundle: true,
    platform: 'node',
    target: 'node18',
    format: 'cjs',
    minify: true,
    legalComments: 'none',
    define: { __CIC_VERSION__: JSON.stringify(pkg.version) },
    logLevel: 'warning',
  };
  return releaseOptions;
}
