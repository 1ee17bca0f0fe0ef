// Where `login` takes its one secret from: a file or standard input (--account-token-file,
// --code-file; `-` is standard input), or, for development, the argument itself
// (--account-token, --code; cli/argv-secrets warns about those). Exactly one source.
import type { Readable } from 'node:stream';
import { CicError } from '../errors';
import { registerSecret } from '../util/secrets';
import { MAX_SECRET_BYTES, checkSecretText, readSecretFileSync, type SecretCheck } from '../util/secret-text';

export type LoginSecretKind = 'account-token' | 'code';

export interface LoginSecret {
  kind: LoginSecretKind;
  value: string;
}

interface Source {
  flag: string;
  kind: LoginSecretKind;
  file: boolean;
}

/** The safer forms first: their order is the order of the usage text. */
export const LOGIN_SECRET_SOURCES: readonly Source[] = [
  { flag: 'account-token-file', kind: 'account-token', file: true },
  { flag: 'code-file', kind: 'code', file: true },
  { flag: 'account-token', kind: 'account-token', file: false },
  { flag: 'code', kind: 'code', file: false },
];

export const LOGIN_SECRET_FLAGS: readonly string[] = LOGIN_SECRET_SOURCES.map((s) => s.flag);

const ONE_OF = '--account-token-file PATH|-, --code-file PATH|-, --account-token TOKEN or --code CODE';

async function readAll(stdin: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    chunks.push(b);
    size += b.length;
    // Past the limit the value is refused anyway: stop buffering whatever is piped in.
    if (size > MAX_SECRET_BYTES + 2) break;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads and validates the login secret; throws USAGE naming the flag, never the value. */
export async function readLoginSecret(flags: Readonly<Record<string, string | boolean | undefined>>, stdin: Readable): Promise<LoginSecret> {
  const given = LOGIN_SECRET_SOURCES.filter((s) => flags[s.flag] !== undefined);
  if (given.length !== 1) {
    const got = given.length ? `got ${given.map((s) => `--${s.flag}`).join(' and ')}` : 'got none';
    throw new CicError('USAGE', `login needs exactly one of ${ONE_OF} (${got})`);
  }
  const source = given[0]!;
  const raw = flags[source.flag];
  if (typeof raw !== 'string') throw new CicError('USAGE', `--${source.flag} needs a value`);
  let checked: SecretCheck;
  let where: string;
  if (!source.file) {
    checked = checkSecretText(raw);
    where = `--${source.flag}: the value`;
  } else if (raw === '-') {
    checked = checkSecretText(await readAll(stdin));
    where = `--${source.flag} -: standard input`;
  } else {
    checked = readSecretFileSync(raw);
    where = `--${source.flag}:`;
  }
  if ('problem' in checked) throw new CicError('USAGE', `${where} ${checked.problem}`);
  registerSecret(checked.value);
  return { kind: source.kind, value: checked.value };
}
