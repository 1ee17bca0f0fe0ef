// A small dependency-free argv parser: `command --flag value --flag=value --bool -- rest`.
import { CicError } from './errors';

export interface ArgSpec {
  /** Flags that take a value, without the leading dashes. */
  values: readonly string[];
  /** Flags that are switches. */
  booleans?: readonly string[];
}

export interface ParsedArgs {
  flags: Record<string, string | boolean>;
  positionals: string[];
  help: boolean;
}

export function parseArgs(argv: readonly string[], spec: ArgSpec): ParsedArgs {
  const values = new Set(spec.values);
  const booleans = new Set(spec.booleans ?? []);
  const flags: Record<string, string | boolean> = {};
  const positionals: string[] = [];
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
    if (!a.startsWith('--')) {
      if (a.startsWith('-') && a.length > 1) throw new CicError('USAGE', `unknown option ${a}`);
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    if (values.has(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || (eq < 0 && v.startsWith('--'))) throw new CicError('USAGE', `--${name} needs a value`);
      flags[name] = v;
    } else if (booleans.has(name)) {
      if (eq >= 0) throw new CicError('USAGE', `--${name} takes no value`);
      flags[name] = true;
    } else {
      throw new CicError('USAGE', `unknown option --${name}`);
    }
  }
  return { flags, positionals, help };
}
