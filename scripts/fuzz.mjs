// Fuzzing, one command each:
//
//   node scripts/fuzz.mjs build                         build/fuzz/receive_fuzzer (clang, libFuzzer, ASan+UBSan)
//   node scripts/fuzz.mjs receive [--minutes M] [--runs N] [--jobs J] [--max-len B]
//                                                       fuzz the native receive() path (default 30 min);
//                                                       new coverage is merged into test/fuzz/corpus/receive,
//                                                       crashes land in test/fuzz/regressions/receive
//   node scripts/fuzz.mjs replay                        every regression input once (exit ≠ 0 on a crash)
//   node scripts/fuzz.mjs multipart [--cases N] [--seed S]
//                                                       the multipart parser's JavaScript fuzz loop;
//                                                       a failing case is saved to test/fuzz/regressions/multipart
//   node scripts/fuzz.mjs record                        re-record the receive seeds from the CIC emulator
//
// Needs clang with the libFuzzer runtime (Debian 12: apt-get install clang libclang-rt-14-dev).
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = join(root, 'build/fuzz');
export const FUZZER = join(out, 'receive_fuzzer');
export const CORPUS_RECEIVE = join(root, 'test/fuzz/corpus/receive');
export const REGRESSIONS_RECEIVE = join(root, 'test/fuzz/regressions/receive');
export const REGRESSIONS_MULTIPART = join(root, 'test/fuzz/regressions/multipart');

function fail(msg) {
  console.error(`fuzz: ${msg}`);
  process.exit(2);
}

function which(names) {
  for (const n of names) {
    const r = spawnSync('sh', ['-c', `command -v ${n}`], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return undefined;
}

function mtime(p) {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return 0;
  }
}

async function runPool(jobs, limit) {
  const errors = [];
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const { cmd, args, what } = jobs[next++];
      const r = await new Promise((resolve) => {
        const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (code) => resolve({ code, err }));
      });
      if (r.code !== 0) errors.push(`${what}:\n${r.err}`);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  if (errors.length) fail(`compilation failed\n${errors.join('\n')}`);
}

/** Builds (incrementally) the libFuzzer binary; returns its path. */
export async function buildReceiveFuzzer({ quiet = false } = {}) {
  const cxx = which(['clang++', 'clang++-14', 'clang++-15', 'clang++-16']);
  const cc = which(['clang', 'clang-14', 'clang-15', 'clang-16']);
  if (!cxx || !cc) fail('clang is not installed (Debian 12: apt-get install clang libclang-rt-14-dev)');
  const ng = spawnSync('bash', [join(root, 'scripts/nghttp2.sh'), 'abs-dir'], { encoding: 'utf8', cwd: root });
  if (ng.status !== 0) fail(`scripts/nghttp2.sh abs-dir failed: ${ng.stderr}`);
  const ngDir = ng.stdout.trim();
  const napiInclude = join(root, 'node_modules/node-addon-api');
  // The Node headers node-gyp would use for this node binary.
  const nodeInclude = [join(dirname(dirname(process.execPath)), 'include/node'), '/usr/include/node'].find((d) => existsSync(join(d, 'node_api.h')));
  if (!nodeInclude) fail('Node-API headers (node_api.h) not found next to the node binary');

  // -O1 -g: fast enough, readable stack traces. fuzzer-no-link instruments nghttp2 too, so
  // coverage guides the search through its frame parser, not only through our callbacks.
  const san = ['-fsanitize=fuzzer-no-link,address,undefined', '-fno-sanitize-recover=undefined', '-fno-omit-frame-pointer', '-g', '-O1'];
  const ngDefs = ['-DNGHTTP2_STATICLIB', '-DHAVE_ARPA_INET_H=1', '-DHAVE_NETINET_IN_H=1', '-DHAVE_CLOCK_GETTIME=1', '-DHAVE_DECL_CLOCK_MONOTONIC=1'];
  const cxxFlags = [
    ...san, '-std=c++17', '-fno-exceptions',
    '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS', '-DNODE_ADDON_API_DISABLE_DEPRECATED', '-DNGHTTP2_STATICLIB',
    `-I${napiInclude}`, `-I${nodeInclude}`, `-I${ngDir}/lib/includes`, `-I${join(root, 'native')}`,
  ];
  mkdirSync(join(out, 'nghttp2'), { recursive: true });
  const jobs = [];
  const objects = [];
  const ngSources = readdirSync(join(ngDir, 'lib')).filter((f) => f.endsWith('.c')).sort();
  for (const f of ngSources) {
    const src = join(ngDir, 'lib', f);
    const obj = join(out, 'nghttp2', f.replace(/\.c$/, '.o'));
    objects.push(obj);
    if (mtime(obj) < mtime(src)) jobs.push({ what: f, cmd: cc, args: ['-c', ...san, ...ngDefs, `-I${ngDir}/lib/includes`, `-I${ngDir}/lib`, src, '-o', obj] });
  }
  const headers = [...readdirSync(join(root, 'native')).filter((f) => f.endsWith('.h')).map((f) => join(root, 'native', f)),
    ...readdirSync(join(root, 'native/fuzz')).filter((f) => f.endsWith('.h')).map((f) => join(root, 'native/fuzz', f))];
  const newestHeader = Math.max(...headers.map(mtime));
  for (const src of [join(root, 'native/session.cc'), join(root, 'native/fuzz/fake_napi.cc'), join(root, 'native/fuzz/receive_fuzzer.cc')]) {
    const obj = join(out, basename(src).replace(/\.cc$/, '.o'));
    objects.push(obj);
    if (mtime(obj) < Math.max(mtime(src), newestHeader)) jobs.push({ what: basename(src), cmd: cxx, args: ['-c', ...cxxFlags, src, '-o', obj] });
  }
  if (jobs.length && !quiet) console.log(`fuzz: compiling ${jobs.length} files with ${basename(cxx)}`);
  await runPool(jobs, 2);
  if (jobs.length || !existsSync(FUZZER)) {
    const link = spawnSync(cxx, ['-fsanitize=fuzzer,address,undefined', ...objects, '-o', FUZZER], { encoding: 'utf8' });
    if (link.status !== 0) {
      fail(`linking failed (is the libFuzzer runtime installed? Debian 12: apt-get install libclang-rt-14-dev)\n${link.stderr}`);
    }
  }
  return FUZZER;
}

function arg(args, name, dflt) {
  const i = args.indexOf(name);
  return i < 0 ? dflt : args[i + 1];
}

/** Runs every regression input once; resolves { status, output }. */
export function replayRegressions(fuzzer = FUZZER) {
  mkdirSync(REGRESSIONS_RECEIVE, { recursive: true });
  const files = readdirSync(REGRESSIONS_RECEIVE).filter((f) => !f.startsWith('.') && f !== 'README.md').map((f) => join(REGRESSIONS_RECEIVE, f));
  if (!files.length) return { status: 0, files: 0, output: '' };
  const r = spawnSync(fuzzer, files, { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status, files: files.length, output: `${r.stdout}${r.stderr}` };
}

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  switch (cmd) {
    case 'build': {
      console.log(await buildReceiveFuzzer());
      return;
    }
    case 'receive': {
      const fuzzer = await buildReceiveFuzzer();
      const minutes = Number(arg(args, '--minutes', '30'));
      const runs = arg(args, '--runs', undefined);
      const jobs = Number(arg(args, '--jobs', '1'));
      const maxLen = Number(arg(args, '--max-len', '65536'));
      // New inputs go to a scratch corpus first; at the end only inputs that add coverage are
      // merged into the kept corpus, so test/ does not fill with redundant files.
      const scratch = join(out, 'corpus-receive');
      mkdirSync(scratch, { recursive: true });
      mkdirSync(REGRESSIONS_RECEIVE, { recursive: true });
      const flags = [`-max_len=${maxLen}`, `-artifact_prefix=${REGRESSIONS_RECEIVE}/`, '-print_final_stats=1', `-max_total_time=${Math.round(minutes * 60)}`];
      if (runs) flags.push(`-runs=${runs}`);
      if (jobs > 1) flags.push(`-jobs=${jobs}`, `-workers=${jobs}`);
      console.log(`fuzz: ${fuzzer} ${flags.join(' ')} ${scratch} ${CORPUS_RECEIVE}`);
      const r = spawnSync(fuzzer, [...flags, scratch, CORPUS_RECEIVE], { stdio: 'inherit' });
      const merge = spawnSync(fuzzer, ['-merge=1', `-max_len=${maxLen}`, CORPUS_RECEIVE, scratch], { stdio: ['ignore', 'ignore', 'inherit'] });
      if (merge.status === 0) rmSync(scratch, { recursive: true, force: true });
      console.log(`fuzz: corpus ${CORPUS_RECEIVE} now holds ${readdirSync(CORPUS_RECEIVE).length} inputs`);
      if (r.status !== 0) console.log(`fuzz: the fuzzer stopped with ${r.status}; the crashing input is in ${REGRESSIONS_RECEIVE} (replay: node scripts/fuzz.mjs replay)`);
      process.exit(r.status ?? 1);
    }
    case 'replay': {
      const fuzzer = await buildReceiveFuzzer();
      const r = replayRegressions(fuzzer);
      process.stdout.write(r.output);
      console.log(`fuzz: ${r.files} regression inputs, exit ${r.status}`);
      process.exit(r.status ?? 1);
    }
    case 'multipart':
    case 'record': {
      const { compileTs } = await import('./compile-ts.mjs');
      await compileTs();
      if (cmd === 'record') {
        const mod = await import(pathToFileURL(join(root, 'build/ts/test/faults/50-record-sessions.js')).href);
        await mod.default.recordSessions(CORPUS_RECEIVE);
        return;
      }
      const mod = await import(pathToFileURL(join(root, 'build/ts/test/faults/51-multipart-fuzz-loop.js')).href);
      const cases = Number(arg(args, '--cases', '100000'));
      const seed = Number(arg(args, '--seed', String(Date.now() % 0x7fffffff)));
      const r = mod.default.runMultipartFuzz({ cases, seed, saveFailuresTo: REGRESSIONS_MULTIPART, log: (s) => console.log(s) });
      console.log(JSON.stringify(r.stats));
      if (r.failures.length) {
        console.log(`fuzz: ${r.failures.length} failing cases saved to ${REGRESSIONS_MULTIPART}`);
        process.exit(1);
      }
      return;
    }
    default:
      console.error('usage: node scripts/fuzz.mjs build | receive [--minutes M] [--runs N] | replay | multipart [--cases N] [--seed S] | record');
      process.exit(2);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
