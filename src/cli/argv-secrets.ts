// Secrets given as command-line arguments still work (development, scripts on a bench) but
// every other local user and process can read them (ps, /proc/PID/cmdline) for as long as
// the command runs: each one gets a warning line naming the flag and the safer form.
import type { Logger } from '../log';

/** The `code` field of the warning line (a contract, like error codes). */
export const SECRET_ON_COMMAND_LINE = 'SECRET_ON_COMMAND_LINE';

const SAFER: Readonly<Record<string, string>> = {
  'account-token': '--account-token-file PATH, or --account-token-file - to read standard input',
  code: '--code-file PATH, or --code-file - to read standard input',
  'client-secret': 'the config file key clientSecret (file mode 0600), clientSecretFile, or CIC_CLIENT_SECRET',
};

export function warnSecretArguments(flags: Readonly<Record<string, string | boolean | undefined>>, log: Logger): void {
  for (const [flag, safer] of Object.entries(SAFER)) {
    if (flags[flag] === undefined) continue;
    log.warn(`--${flag} puts a secret on the command line, where other processes can read it; use ${safer}`, {
      code: SECRET_ON_COMMAND_LINE,
      flag: `--${flag}`,
    });
  }
}
