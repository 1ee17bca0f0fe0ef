// A small dependency-free argv parser:
//   [command] --flag value --flag=value --switch -h|--help -- positional…
// Hand-written rather than node:util parseArgs, which Node 18.0–18.2 lack.
//
// Hazards handled: a value flag followed by another `--flag` is a missing value, not a value
// (`--code --force`); write `--code=--odd` for a value that really starts with `--`. A single
// dash value such as a token `-Ab3` is accepted. A repeated flag: the last one wins.
import { CicError } from './errors';

export interface FlagSpec {
  /** Flags that take a value, without the leading dashes. */
  values?: readonly string[];
  /** Flags that are switches. */
  booleans?: readonly string[];
}

export interface ArgSpec extends FlagSpec {
  /**
   * When given, the first positional argument must name one of these commands; its own flags
   * are accepted after it, the spec's flags anywhere.
   */
  commands?: Readonly<Record<string, FlagSpec>>;
}

export interface ParsedArgs {
  /** Present only when the spec lists commands (undefined when only --help was asked). */
  command?: string;
  flags: Record<string, string | boolean>;
  positionals: string[];
  help: boolean;
}

export function parseArgs(argv: readonly string[], spec: ArgSpec): ParsedArgs {
  const values = new Set(spec.values ?? []);
  const booleans = new Set(spec.booleans ?? []);
  const flags: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  let command: string | undefined;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a === '-h' || a === '--help') {
      help = true;
      continue;
    }
    if (!a.startsWith('-') || a === '-') {
      if (spec.commands && command === undefined) {
        const cmd = Object.prototype.hasOwnProperty.call(spec.commands, a) ? spec.commands[a] : undefined;
        if (!cmd) throw new CicError('USAGE', `unknown command "${a}" (one of: ${Object.keys(spec.commands).join(', ')})`);
        command = a;
        for (const v of cmd.values ?? []) values.add(v);
        for (const b of cmd.booleans ?? []) booleans.add(b);
      } else {
        positionals.push(a);
      }
      continue;
    }
    if (!a.startsWith('--')) throw new CicError('USAGE', `unknown option ${a} (try --help)`);
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (values.has(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || (eq < 0 && v.startsWith('--'))) {
        throw new CicError('USAGE', `--${name} needs a value (write --${name}=VALUE for a value starting with --)`);
      }
      flags[name] = v;
    } else if (booleans.has(name) || name === 'help') {
      if (eq >= 0 || name === 'help') throw new CicError('USAGE', `--${name} takes no value`);
      flags[name] = true;
    } else {
      throw new CicError('USAGE', `unknown option --${name}${command ? ` for ${command}` : ''} (try --help)`);
    }
  }
  if (spec.commands && command === undefined && !help) {
    throw new CicError('USAGE', `missing command (one of: ${Object.keys(spec.commands).join(', ')})`);
  }
  return spec.commands ? { command, flags, positionals, help } : { flags, positionals, help };
}
