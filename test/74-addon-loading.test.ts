// How the release bundle finds its addon, as on a device: beside itself under the target's
// name, or at $CIC_ADDON_PATH; a missing or broken file is a coded error (ADDON_NOT_FOUND,
// exit 1) that names every path it tried, never a stack trace.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addonFileName } from '../src/h2/native';
import { bundlePath, buildBundle, root, runBundle } from './support/runtime-process';

const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, ...extra });
let dir: string;

test.before(async () => {
  await buildBundle();
  dir = mkdtempSync(join(tmpdir(), 'cic-addon-'));
  copyFileSync(bundlePath, join(dir, 'cic-runtime.js'));
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

/** The one JSON error line the bundle writes to stderr. */
function errorLine(stderr: string): { code: string; msg: string } {
  const lines = stderr.trim().split('\n');
  assert.is(lines.length, 1, `one line, got: ${stderr}`);
  return JSON.parse(lines[0]!);
}

test('no addon beside the bundle: ADDON_NOT_FOUND naming the file it looked for, exit 1', async () => {
  const r = await runBundle(['--version'], env(), join(dir, 'cic-runtime.js'));
  assert.is(r.code, 1);
  const e = errorLine(r.stderr);
  assert.is(e.code, 'ADDON_NOT_FOUND');
  assert.ok(e.msg.includes(join(dir, addonFileName())), e.msg);
  assert.ok(e.msg.includes('CIC_ADDON_PATH'), 'says how to point at the file');
});

test('$CIC_ADDON_PATH naming a missing file or a file that is not an addon', async () => {
  const missing = await runBundle(['--version'], env({ CIC_ADDON_PATH: join(dir, 'nowhere.node') }), join(dir, 'cic-runtime.js'));
  assert.is(missing.code, 1);
  assert.is(errorLine(missing.stderr).code, 'ADDON_NOT_FOUND');
  assert.ok(errorLine(missing.stderr).msg.includes(join(dir, 'nowhere.node')));

  const junk = join(dir, 'junk.node');
  writeFileSync(junk, 'not an ELF file\n');
  const broken = await runBundle(['--version'], env({ CIC_ADDON_PATH: junk }), join(dir, 'cic-runtime.js'));
  assert.is(broken.code, 1);
  const e = errorLine(broken.stderr);
  assert.is(e.code, 'ADDON_NOT_FOUND');
  assert.match(e.msg, /cannot load the native addon .*junk\.node/);
});

test('the addon beside the bundle under the target name is found without configuration', async () => {
  copyFileSync(join(root, 'build', 'Release', 'cic_h2.node'), join(dir, addonFileName()));
  const r = await runBundle(['--version'], env(), join(dir, 'cic-runtime.js'));
  assert.is(r.code, 0, r.stderr);
  const target = addonFileName().replace(/^cic-runtime\.|\.node$/g, '');
  assert.match(r.stdout.trim(), new RegExp(`^cic-runtime \\S+ nghttp2 \\d+\\.\\d+\\.\\d+ ${target}$`));
});

test.run();
