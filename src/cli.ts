// cic-runtime command line (the bundle's entry point).
import { loadBinding } from './h2/native';
import { RUNTIME_VERSION } from './version';

function target(): string {
  return `${process.platform}-${process.arch === 'arm' ? 'armv7' : process.arch}`;
}

function main(argv: string[]): number {
  if (argv[0] === '--version' || argv[0] === 'version') {
    const binding = loadBinding();
    process.stdout.write(`cic-runtime ${RUNTIME_VERSION} nghttp2 ${binding.nghttp2Version()} ${target()}\n`);
    return 0;
  }
  process.stderr.write('usage: cic-runtime --version\n');
  return 2;
}

process.exitCode = main(process.argv.slice(2));
