// What every command shares, built from the validated configuration: the logger, the extra
// CA and the token store. Kept apart from the auth client and token manager (context.ts) so
// that `status` never loads the HTTPS client stack. Nothing here touches the network.
import { readFileSync } from 'node:fs';
import { createLogger, type Logger } from '../log';
import { CicError } from '../errors';
import type { Config } from '../config';
import { TokenStore } from '../auth/token-store';

export interface Context {
  config: Config;
  log: Logger;
  caPem: string | undefined;
}

export function createContext(config: Config, write?: (line: string) => void): Context {
  const log = createLogger({ level: config.logLevel, ...(write ? { write } : {}) });
  let caPem: string | undefined;
  if (config.caFile) {
    try {
      caPem = readFileSync(config.caFile, 'utf8');
    } catch (e) {
      throw new CicError('CONFIG_INVALID', `caFile: cannot read ${config.caFile}`, { cause: e });
    }
    if (!caPem.includes('-----BEGIN CERTIFICATE-----')) throw new CicError('CONFIG_INVALID', `caFile: ${config.caFile} holds no PEM certificate`);
  }
  return { config, log, caPem };
}

export function tokenStore(ctx: Context): TokenStore {
  return new TokenStore({ path: ctx.config.tokenFile, keyPath: ctx.config.deviceKeyFile, logger: ctx.log });
}
