// The commands of the command line: the table, `--help`, and dispatch to each command's
// module. Each command module is loaded on use (esbuild keeps it behind a lazy initialiser), so
// `status` never loads the TLS and HTTP client stack.
import type { Readable, Writable } from 'node:stream';
import { parseArgs } from '../cli-args';
import { CONFIG_FLAGS, CONFIG_KEYS, loadConfig, type ConfigKey } from '../config';
import { CicError } from '../errors';
import { RUNTIME_VERSION } from '../version';
import { EXIT } from './exit-codes';
import { LOGIN_SECRET_FLAGS } from './login-secret';
import { warnSecretArguments } from './argv-secrets';

export interface CliIo {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Emits SIGTERM / SIGINT (the process, in production). */
  signals: NodeJS.EventEmitter;
  env: NodeJS.ProcessEnv;
}

interface Command {
  summary: string;
  usage: string;
  values?: string[];
  booleans?: string[];
  require: ConfigKey[];
  /** Extra lines of `<command> --help`. */
  notes?: string[];
}

const AUTH_KEYS: ConfigKey[] = ['authUrl', 'clientId', 'clientSecret', 'deviceId', 'tokenFile'];

const COMMANDS: Record<string, Command> = {
  login: {
    summary: 'pair the device: authorize and store the tokens',
    usage: 'login (--account-token-file PATH|- | --code-file PATH|- | --account-token TOKEN | --code CODE) [--agreement-redirect URL]',
    values: [...LOGIN_SECRET_FLAGS, 'agreement-redirect'],
    require: AUTH_KEYS,
    notes: [
      'exactly one source:',
      '  --account-token-file PATH|-   the account token, from a file or (-) standard input',
      '  --code-file PATH|-            an authorization code (the CODE of a terms line, or from a companion app)',
      '  --account-token, --code       development only: arguments show in ps, so each prints a SECRET_ON_COMMAND_LINE warning',
      '  a file or standard input holds one line (its trailing newline is dropped); a file group/other may read is refused',
      'terms: exit 4 with {"terms":URI,"code":CODE} on stdout; show URI to the user. The page ends in a redirect; pass it on:',
      '  --agreement-redirect clova://agreement-success           logs in with the source given (the same account token, or CODE)',
      '  --agreement-redirect clova://agreement-failure?error=R   exits 4 with {"agreement":"failure","reason":R} on stdout',
    ],
  },
  status: { summary: 'print {"loggedIn","expiresAt","deviceId","tokenFile"}', usage: 'status', require: ['tokenFile'] },
  refresh: { summary: 'refresh the access token now', usage: 'refresh', require: AUTH_KEYS },
  logout: { summary: 'revoke the token (grant_type=delete) and remove the token file', usage: 'logout [--force]', booleans: ['force'], require: AUTH_KEYS },
  'oauth-token': { summary: 'print a client-credentials access token (cached next to the token file)', usage: 'oauth-token --token-url URL --scope SCOPE', values: ['token-url', 'scope'], require: ['clientId', 'clientSecret', 'tokenFile'] },
  run: { summary: 'stay connected to CIC: directives on stdout, events from stdin', usage: 'run', require: [...AUTH_KEYS, 'cicUrl', 'userAgent'] },
};

function mainHelp(): string {
  const lines = [
    `cic-runtime ${RUNTIME_VERSION} — keeps a device connected to Clova CIC`,
    '',
    'usage: cic-runtime <command> [options]',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`),
    '  --version    runtime version, nghttp2 version inside the addon, target',
    '',
    'Every command takes --config PATH and the configuration flags below; `cic-runtime <command> --help` for details.',
    '',
    ...configHelp(),
    '',
    'exit codes: 0 ok, 1 runtime error, 2 usage or configuration error, 3 not logged in or grant dead, 4 terms agreement needed or declined',
  ];
  return lines.join('\n') + '\n';
}

function configHelp(): string[] {
  return [
    'configuration (JSON file key / environment / flag; flags override the environment, which overrides the file):',
    ...CONFIG_KEYS.map((k) => `  ${k.key.padEnd(19)} ${k.env.padEnd(27)} --${k.flag.padEnd(23)} ${k.description}${k.default !== undefined ? ` [${k.default}]` : ''}`),
  ];
}

function commandHelp(c: Command): string {
  const notes = c.notes ? [...c.notes, ''] : [];
  return [`usage: cic-runtime ${c.usage} [--config PATH] [configuration flags]`, '', c.summary, '', ...notes, `needs: ${c.require.join(', ')}`, '', ...configHelp(), ''].join('\n');
}

export async function runCommand(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(mainHelp());
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const cmd = COMMANDS[name];
  if (!cmd) throw new CicError('USAGE', `unknown command "${name}" (try --help)`);
  const args = parseArgs(rest, { values: [...(cmd.values ?? []), ...CONFIG_FLAGS], booleans: cmd.booleans ?? [] });
  if (args.help) {
    io.stdout.write(commandHelp(cmd));
    return EXIT.OK;
  }
  if (args.positionals.length) throw new CicError('USAGE', `unexpected argument "${args.positionals[0]}"`);
  const config = loadConfig({ flags: args.flags, env: io.env, require: cmd.require });
  const { createContext } = await import('./base-context');
  const ctx = createContext(config, (line) => io.stderr.write(line));
  warnSecretArguments(args.flags, ctx.log);
  const flag = (k: string) => (typeof args.flags[k] === 'string' ? (args.flags[k] as string) : undefined);
  switch (name) {
    case 'login': {
      const { readAgreementFlag } = await import('./agreement-flag');
      const { readLoginSecret } = await import('./login-secret');
      const agreement = readAgreementFlag(flag('agreement-redirect'));
      const secret = await readLoginSecret(args.flags, io.stdin);
      return (await import('./auth-commands')).login(ctx, io.stdout, { secret, agreement });
    }
    case 'status':
      return (await import('./status-command')).status(ctx, io.stdout);
    case 'refresh':
      return (await import('./auth-commands')).refresh(ctx, io.stdout);
    case 'logout':
      return (await import('./auth-commands')).logout(ctx, io.stdout, { force: args.flags.force === true });
    case 'oauth-token': {
      const tokenUrl = flag('token-url');
      const scope = flag('scope');
      if (!tokenUrl || !scope) throw new CicError('USAGE', 'oauth-token needs --token-url URL and --scope SCOPE');
      return (await import('./auth-commands')).oauthToken(ctx, io.stdout, { tokenUrl, scope });
    }
    case 'run':
      return (await import('./run')).run(ctx, io);
    default:
      throw new CicError('USAGE', `unknown command "${name}"`);
  }
}

