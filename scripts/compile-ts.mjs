// Transpiles src/ and test/ TypeScript one-to-one into build/ts (CommonJS) for the test runner.
// Type checking is tsc's job (npm run typecheck); this is only the fast syntax strip.
import { build } from 'esbuild';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function walk(dir, out = []) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

export async function compileTs() {
  const entryPoints = [...walk(join(root, 'src')), ...walk(join(root, 'test'))];
  await build({
    entryPoints,
    outdir: join(root, 'build/ts'),
    outbase: root,
    bundle: false,
    platform: 'node',
    format: 'cjs',
    target: 'node18',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
  return entryPoints.map((p) => relative(root, p));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = await compileTs();
  console.log(`compiled ${files.length} files into build/ts`);
}
