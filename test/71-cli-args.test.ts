// The command-line parser: values, =values, switches, help, the -- terminator, commands with
// their own flags, and a USAGE error naming the flag for everything else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseArgs, type ArgSpec } from '../src/cli-args';
import { isCicError } from '../src/errors';

const spec: ArgSpec = { values: ['code', 'config'], booleans: ['force'] };

function usage(argv: string[], s: ArgSpec, want: RegExp): void {
  assert.throws(
    () => parseArgs(argv, s),
    (e: unknown) => isCicError(e, 'USAGE') && want.test((e as Error).message),
    `${JSON.stringify(argv)} should fail with ${want}`,
  );
}

test('values, =values, switches, positionals and the -- terminator', () => {
  assert.equal(parseArgs(['--code', 'a', '--config=b', '--force', 'pos', '--', '--x', '-h'], spec), {
    flags: { code: 'a', config: 'b', force: true },
    positionals: ['pos', '--x', '-h'],
    help: false,
  });
  assert.equal(parseArgs([], spec), { flags: {}, positionals: [], help: false });
});

test('--flag=value keeps everything after the first "=", including an empty value', () => {
  assert.equal(parseArgs(['--code=a=b', '--config='], spec).flags, { code: 'a=b', config: '' });
  assert.is(parseArgs(['--code', ''], spec).flags.code, '');
});

test('a value may start with one dash (tokens do), and "=" makes any value explicit', () => {
  assert.is(parseArgs(['--code', '-Ab3_x'], spec).flags.code, '-Ab3_x');
  assert.is(parseArgs(['--code', '-'], spec).flags.code, '-');
  assert.is(parseArgs(['--code=--odd'], spec).flags.code, '--odd');
});

test('a repeated flag: the last one wins', () => {
  assert.is(parseArgs(['--code', 'a', '--code', 'b'], spec).flags.code, 'b');
});

test('-h and --help set help anywhere before --', () => {
  assert.is(parseArgs(['-h'], spec).help, true);
  assert.is(parseArgs(['--code', 'a', '--help'], spec).help, true);
  assert.is(parseArgs(['--', '--help'], spec).help, false);
  usage(['--help=yes'], spec, /--help takes no value/);
});

test('unknown flags are a USAGE error naming the flag', () => {
  usage(['--nope'], spec, /unknown option --nope/);
  usage(['--nope=1'], spec, /unknown option --nope \(try --help\)/);
  usage(['-x'], spec, /unknown option -x/);
  usage(['-fh'], spec, /unknown option -fh/);
  usage(['--Code', 'a'], spec, /unknown option --Code/);
  usage(['--constructor'], spec, /unknown option --constructor/);
});

test('a flag missing its value is a USAGE error naming the flag', () => {
  usage(['--code'], spec, /--code needs a value/);
  usage(['--code', '--force'], spec, /--code needs a value \(write --code=VALUE for a value starting with --\)/);
  usage(['--code', '--'], spec, /--code needs a value/);
  usage(['--force=1'], spec, /--force takes no value/);
});

const commands: ArgSpec = {
  values: ['config'],
  commands: { login: { values: ['account-token', 'code'] }, logout: { booleans: ['force'] }, status: {} },
};

test('commands: the first positional names the command; its flags count after it', () => {
  assert.equal(parseArgs(['login', '--account-token', 't', '--config', 'c'], commands), {
    command: 'login',
    flags: { 'account-token': 't', config: 'c' },
    positionals: [],
    help: false,
  });
  assert.equal(parseArgs(['--config=c', 'logout', '--force', 'extra'], commands), {
    command: 'logout',
    flags: { config: 'c', force: true },
    positionals: ['extra'],
    help: false,
  });
  assert.equal(parseArgs(['--help'], commands), { command: undefined, flags: {}, positionals: [], help: true });
  assert.is(parseArgs(['status', '-h'], commands).help, true);
});

test('commands: unknown or missing command, and flags of another command, are USAGE errors', () => {
  usage(['nonsense'], commands, /unknown command "nonsense" \(one of: login, logout, status\)/);
  usage(['toString'], commands, /unknown command "toString"/);
  usage([], commands, /missing command \(one of: login, logout, status\)/);
  usage(['--config', 'c'], commands, /missing command/);
  usage(['status', '--force'], commands, /unknown option --force for status/);
  usage(['--force', 'logout'], commands, /unknown option --force/); // a command's flag only after it
});

test('the spec is not modified by a command', () => {
  const s: ArgSpec = { values: ['config'], commands: { login: { values: ['code'] } } };
  parseArgs(['login', '--code', 'x'], s);
  assert.equal(s.values, ['config']);
  usage(['--code', 'x'], { values: ['config'] }, /unknown option --code/);
});

test.run();
