// The size budget check that `node scripts/build.mjs --check-budget` (and so CI) relies on:
// a file over its byte or gzip budget is a problem, one within both is not, and every source
// file of the command-line bundle is assigned to a layer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..');
const load = () => import(join(root, 'scripts', 'budget.mjs'));
const dir = mkdtempSync(join(tmpdir(), 'cic-budget-'));

test('a file over its raw budget, or over its gzip budget, is reported; within both it is not', async () => {
  const { checkFile } = await load();
  const random = join(dir, 'random.bin'); // incompressible: gzip barely shrinks it
  writeFileSync(random, randomBytes(10_000));
  const zeros = join(dir, 'zeros.bin');
  writeFileSync(zeros, Buffer.alloc(10_000));
  assert.equal(checkFile(random, { bytes: 20_000, gzipBytes: 20_000 }), []);
  assert.is(checkFile(random, { bytes: 9_999 }).length, 1);
  assert.is(checkFile(random, { bytes: 20_000, gzipBytes: 5_000 }).length, 1);
  assert.is(checkFile(random, { bytes: 100, gzipBytes: 100 }).length, 2);
  assert.equal(checkFile(zeros, { bytes: 10_000, gzipBytes: 100 }), []);
});

test('the budgets are the documented ones: bundle 140 KiB raw and 48 KiB gzip (ceiling 176 / 58 while missed), addon 400 KiB', async () => {
  const { BUDGETS, BUNDLE_CEILINGS } = await load();
  assert.equal(BUDGETS, { bundleBytes: 140 * 1024, bundleGzipBytes: 48 * 1024, addonBytes: 400 * 1024 });
  assert.equal(BUNDLE_CEILINGS, { bundleBytes: 176 * 1024, bundleGzipBytes: 58 * 1024 });
});

test('layer sizes add up to the output, and a source outside every layer is an error', async () => {
  const { layerSizes, LAYERS } = await load();
  const metafile = {
    outputs: {
      'dist/cic-runtime.js': {
        bytes: 1000,
        inputs: { 'src/h2/connection.ts': { bytesInOutput: 300 }, 'src/cic/client.ts': { bytesInOutput: 500 }, 'node_modules/tiny-typed-emitter/lib/index.js': { bytesInOutput: 50 } },
      },
    },
  };
  const sizes = layerSizes(metafile, join(root, 'dist/cic-runtime.js'));
  assert.is(sizes.h2, 300);
  assert.is(sizes.cic, 500);
  assert.is(sizes.deps, 50);
  assert.is(sizes.other, 150);
  assert.is(LAYERS.reduce((n: number, l: { name: string }) => n + sizes[l.name], 0) + sizes.other, 1000);
  metafile.outputs['dist/cic-runtime.js'].inputs['elsewhere/x.ts' as 'src/h2/connection.ts'] = { bytesInOutput: 1 };
  assert.throws(() => layerSizes(metafile, join(root, 'dist/cic-runtime.js')), /belongs to no layer/);
});

test.run();
