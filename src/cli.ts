// cic-runtime command line (the bundle's entry point). Logs go to stderr as JSON lines;
// stdout carries only each command's result.
//
// Start-up is paid on every boot of a device: `--version` loads only the addon; every other
// command loads its modules when it runs (src/cli/commands.ts and below).
import { isCicError } from './errors';
import { loadBinding } from './h2/native';
import { redactText } from './util/secrets';
import { RUNTIME_VERSION } from './version';
import { EXIT, exitCodeFor } from './cli/exit-codes';
import type { CliIo } from './cli/commands';

function target(): string {
  return `${process.platform}-${process.arch === 'arm' ? 'armv7' : process.arch}`;
}

export async function main(argv: string[], io: CliIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, signals: process, env: process.env }): Promise<number> {
  if (argv[0] === '--version' || argv[0] === 'version') {
    const binding = loadBinding();
    io.stdout.write(`cic-runtime ${RUNTIME_VERSION} nghttp2 ${binding.nghttp2Version()} ${target()}\n`);
    return EXIT.OK;
  }
  return (await import('./cli/commands')).runCommand(argv, io);
}

/** Errors end as one JSON line on stderr (secrets redacted) and a contract exit code. */
function report(err: unknown): number {
  const code = isCicError(err) ? err.code : 'ERR_INTERNAL';
  const message = redactText(err instanceof Error ? err.message : String(err));
  process.stderr.write(JSON.stringify({ t: new Date().toISOString(), level: 'error', msg: message, code }) + '\n');
  return exitCodeFor(err);
}

// The entry, or its reload by the compile-cache banner (src/compile-cache-banner.js), which
// loads this same file again as a module.
if (require.main === module || (require.main !== undefined && require.main.filename === __filename)) {
  // Hazard: the runtime's timers are unref'd (an idle device must not be kept awake by them),
  // so a command waiting only on one (an auth retry delay) would let the process end with
  // exit 0 and nothing done. The command holds the process until it has settled.
  const hold = setInterval(() => undefined, 0x7fffffff);
  main(process.argv.slice(2)).then(
    (code) => {
      clearInterval(hold);
      process.exitCode = code;
    },
    (err) => {
      clearInterval(hold);
      process.exitCode = report(err);
    },
  );
}
