// The npm package as an application receives it. `npm pack` of the repository is installed
// into an empty directory — offline, with an empty npm cache, its one dependency packed from
// node_modules — and from there it is used by name only:
// (a) require('cic-runtime') and import('cic-runtime') give exactly the values the shipped
//     declarations declare, every public method of the exported classes exists at run time,
//     and the addon that loads is the one inside the package;
// (b) test/library/device-app.ts (the README's library example) compiles with `strict`
//     against the shipped declarations — through "exports" (node16) and through the legacy
//     "types" field — with the declarations themselves checked (skipLibCheck off);
// (c) it runs: pairs through the Clova auth emulator, connects to the CIC emulator over TLS
//     trusting the test CA, sends a text event, prints the answer directive and exits 0; a
//     second run uses the stored token without pairing again.
//
// The pack uses --ignore-scripts: the package's `prepare` rebuilds the addon from scratch
// (node-gyp rebuild empties build/, which other test processes load the addon from).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { AuthEmulator } from './emulator/auth-server';
import { startCicEmulator, type CicEmulator } from './emulator/cic-server';
import { testPki } from './support/certs';
import { root } from './support/runtime-process';
import { addonFileName } from '../src/h2/native';
import { TokenStore } from '../src/auth/token-store';

const pki = testPki();
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const work = mkdtempSync(join(tmpdir(), 'cic-library-'));
const app = join(work, 'app');
const installed = join(app, 'node_modules', 'cic-runtime');
// HOME points into the work directory: no user .npmrc, and npm's logs stay in its cache.
const npmEnv: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  HOME: work,
  npm_config_cache: join(work, 'npm-cache'),
  npm_config_update_notifier: 'false',
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; a process still alive after `ms` is killed and reported. */
function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; ms?: number }): Promise<Run> {
  const ms = opts.ms ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not exit within ${ms} ms; stderr: ${stderr.slice(-2000)}`));
    }, ms);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function ok(r: Run, what: string): Run {
  assert.is(r.code, 0, `${what} failed (exit ${r.code}):\n${r.stderr.slice(-3000)}\n${r.stdout.slice(-1000)}`);
  return r;
}

interface PackedFile {
  path: string;
  size: number;
}

let packed: { filename: string; size: number; unpackedSize: number; files: PackedFile[] };

test.before(async () => {
  // dist/ as `npm run build` leaves it (the bench bundle aside: it is not packed).
  const build = await import(join(root, 'scripts', 'build.mjs'));
  await build.bundle();
  await build.bundleLibrary();
  await build.emitDeclarations();
  build.placeAddon(join(root, 'build', 'Release', 'cic_h2.node'), build.hostTarget());
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test('npm pack ships the bundles, the addon and the declarations, nothing of src/, test/ or scripts/', async () => {
  const r = ok(await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, env: npmEnv }), 'npm pack');
  [packed] = JSON.parse(r.stdout);
  const paths = packed.files.map((f) => f.path).sort();
  for (const must of ['package.json', 'README.md', 'dist/cic-runtime.js', 'dist/cic-runtime-lib.js', `dist/${addonFileName()}`, 'dist/types/index.d.ts']) {
    assert.ok(paths.includes(must), `${must} is in the package: ${paths.join(' ')}`);
  }
  const shipped = /^(package\.json|README\.md|LICENSE|dist\/cic-runtime(-lib)?\.js|dist\/cic-runtime\.linux-[a-z0-9]+\.node|dist\/types\/[a-z0-9/-]+\.d\.ts)$/;
  assert.equal(paths.filter((p) => !shipped.test(p)), [], 'nothing else is packed');
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  console.log(`  ${packed.filename}: ${paths.length} files, ${kib(packed.size)} packed, ${kib(packed.unpackedSize)} unpacked`);
});

test('the tarball installs offline into an empty directory without running any script of the package', async () => {
  const dep = ok(
    await run('npm', ['pack', join(root, 'node_modules', 'tiny-typed-emitter'), '--ignore-scripts', '--json', '--pack-destination', work], { cwd: work, env: npmEnv }),
    'npm pack tiny-typed-emitter',
  );
  const depTarball = join(work, JSON.parse(dep.stdout)[0].filename);
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'device-app', version: '1.0.0', private: true }));
  ok(
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', depTarball, join(work, packed.filename)], { cwd: app, env: npmEnv, ms: 120_000 }),
    'npm install of the tarball',
  );
  const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
  // The only scripts npm runs for a tarball or registry dependency; the addon is prebuilt.
  for (const s of ['preinstall', 'install', 'postinstall']) assert.not.ok(s in (pkg.scripts ?? {}), `the package has no ${s} script`);
  assert.ok(statSync(join(installed, 'dist', addonFileName())).isFile());

  const version = ok(await run(join(app, 'node_modules', '.bin', 'cic-runtime'), ['--version'], { cwd: app, env: { PATH: process.env.PATH } }), 'the installed bin');
  assert.match(version.stdout, /^cic-runtime \S+ nghttp2 \d+\.\d+\.\d+ linux-\w+\n$/);
});

/** Value exports of the shipped index.d.ts, and the public methods and accessors of its classes. */
function declaredSurface(): { values: string[]; members: Record<string, string[]> } {
  const index = join(installed, 'dist', 'types', 'index.d.ts');
  const program = ts.createProgram([index], { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, types: [], noEmit: true });
  const checker = program.getTypeChecker();
  const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(index)!)!;
  const values: string[] = [];
  const members: Record<string, string[]> = {};
  const isMember = (d: ts.Declaration) =>
    (ts.isMethodDeclaration(d) || ts.isGetAccessorDeclaration(d) || ts.isSetAccessorDeclaration(d)) &&
    (ts.getCombinedModifierFlags(d) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected | ts.ModifierFlags.Static)) === 0;
  for (const exported of checker.getExportsOfModule(moduleSymbol)) {
    const target = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    if (!(target.flags & ts.SymbolFlags.Value)) continue;
    values.push(exported.name);
    if (target.flags & ts.SymbolFlags.Class) {
      members[exported.name] = checker
        .getPropertiesOfType(checker.getDeclaredTypeOfSymbol(target))
        .filter((p) => /^[A-Za-z_$][\w$]*$/.test(p.name) && (p.declarations ?? []).some(isMember))
        .map((p) => p.name);
    }
  }
  return { values: values.sort(), members };
}

test('require and import by name give what the declarations declare, and load the addon inside the package', async () => {
  const { values, members } = declaredSurface();
  for (const name of ['CicClient', 'TokenManager', 'ClovaAuthClient', 'ClientCredentialsClient', 'TokenStore', 'buildUserAgent', 'CicError', 'isCicError', 'ERROR_CODES', 'readDirectives', 'createLogger']) {
    assert.ok(values.includes(name), `${name} is declared`);
  }
  assert.ok(members.CicClient!.includes('sendEvent') && members.TokenManager!.includes('login'), 'class members are collected');
  const probe = `
    const { readFileSync } = require('node:fs');
    const { dirname, join } = require('node:path');
    const members = ${JSON.stringify(members)};
    const lib = require('cic-runtime');
    const missing = Object.entries(members).flatMap(([cls, names]) => names.filter((n) => !(n in lib[cls].prototype)).map((n) => cls + '.' + n));
    lib.loadBinding();
    const addon = join(dirname(require.resolve('cic-runtime')), lib.addonFileName());
    const mapped = readFileSync('/proc/self/maps', 'utf8').includes(addon);
    import('cic-runtime').then((ns) => console.log(JSON.stringify({
      cjs: Object.keys(lib).sort(), esm: Object.keys(ns).filter((k) => k !== 'default').sort(), missing, mapped,
      main: require.resolve('cic-runtime'), cli: require.resolve('cic-runtime/cli'),
    })));`;
  const r = ok(await run(process.execPath, ['-e', probe], { cwd: app, env: { PATH: process.env.PATH } }), 'the import probe');
  const got = JSON.parse(r.stdout);
  assert.equal(got.cjs, values, 'require(): the declared values, no more, no less');
  assert.equal(got.esm, values, 'import(): the same names as named exports');
  assert.equal(got.missing, [], 'every declared public method and accessor exists');
  assert.ok(got.mapped, 'the addon beside the library bundle is the one loaded');
  assert.is(got.main, join(installed, 'dist', 'cic-runtime-lib.js'));
  assert.is(got.cli, join(installed, 'dist', 'cic-runtime.js'));
});

test('the README example compiles with strict against the shipped declarations', async () => {
  copyFileSync(join(root, 'test', 'library', 'device-app.ts'), join(app, 'device-app.ts'));
  // An application brings its own @types/node; this one borrows the repository's.
  const compilerOptions = {
    strict: true,
    target: 'ES2022',
    module: 'node16',
    moduleResolution: 'node16',
    outDir: 'out',
    types: ['node'],
    typeRoots: [join(root, 'node_modules', '@types')],
    skipLibCheck: false,
  };
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['device-app.ts'] }, null, 2));
  ok(await run(process.execPath, [tsc, '-p', app], { cwd: app, env: { PATH: process.env.PATH } }), 'tsc (node16: "exports")');
  ok(
    await run(process.execPath, [tsc, '-p', app, '--noEmit', '--module', 'commonjs', '--moduleResolution', 'node10', '--skipLibCheck'], { cwd: app, env: { PATH: process.env.PATH } }),
    'tsc (node10: "types")',
  );
  assert.ok(statSync(join(app, 'out', 'device-app.js')).isFile());
});

test('the README example pairs, connects over TLS, gets the answer to a text event and exits 0; a second run reuses the stored token', async () => {
  const auth = new AuthEmulator({ cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
  await auth.start();
  let cic: CicEmulator | undefined;
  try {
    cic = await startCicEmulator({ validateToken: (t) => auth.isValidAccessToken(t) });
    const tokenFile = join(work, 'state', 'token');
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      CIC_AUTH_URL: auth.url,
      CIC_URL: cic.url,
      CIC_CLIENT_ID: auth.clientId,
      CIC_CLIENT_SECRET: auth.clientSecret,
      CIC_DEVICE_ID: 'library-device',
      CIC_TOKEN_FILE: tokenFile,
      CIC_CA_FILE: pki.caPath,
    };
    const program = join(app, 'out', 'device-app.js');

    const first = ok(await run(process.execPath, [program], { cwd: app, env: { ...env, CIC_ACCOUNT_TOKEN: auth.addAccount() }, ms: 30_000 }), 'first run');
    assert.is(first.stdout, 'directive SpeechSynthesizer.Speak\n');
    assert.is(first.stderr, '', 'nothing at warn level or above');
    assert.is(auth.count('authorize'), 1);
    assert.is(auth.count('token:authorization_code'), 1);
    assert.is(statSync(tokenFile).mode & 0o777, 0o600, 'the token file is private');
    const stored = await new TokenStore({ path: tokenFile }).load();
    assert.is(stored.state, 'ok');
    const accessToken = stored.state === 'ok' ? stored.tokens.accessToken : '';

    assert.is(cic.events.length, 1);
    const event = cic.events[0]!;
    assert.is(`${event.namespace}.${event.name}`, 'TextRecognizer.Recognize');
    assert.equal(event.payload, { text: 'What time is it?' });
    assert.match(event.dialogRequestId ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.ok(event.token === accessToken, 'the event carried the stored access token as its bearer token');
    assert.ok(auth.isValidAccessToken(event.token), 'a token the auth server issued');

    const second = ok(await run(process.execPath, [program], { cwd: app, env, ms: 30_000 }), 'second run (no account token)');
    assert.is(second.stdout, 'directive SpeechSynthesizer.Speak\n');
    assert.is(second.stderr, '');
    assert.is(auth.count('authorize'), 1, 'no second pairing');
    assert.is(cic.events.length, 2);
    assert.ok(cic.events[1]!.token === accessToken, 'the stored token was used');
  } finally {
    await cic?.stop();
    await auth.stop();
  }
});

test.run();
