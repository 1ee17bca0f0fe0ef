// Builds what the commands share from the validated configuration: logger, token store,
// auth client and token manager. Nothing here touches the network.
import { readFileSync } from 'node:fs';
import { createLogger, type Logger } from '../log';
import { CicError } from '../errors';
import type { Config } from '../config';
import { TokenStore } from '../auth/token-store';
import { ClovaAuthClient } from '../auth/clova-auth';
import { TokenManager } from '../auth/token-manager';
import { RUNTIME_VERSION } from '../version';

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

export function authClient(ctx: Context): ClovaAuthClient {
  const c = ctx.config;
  return new ClovaAuthClient({
    authUrl: c.authUrl!,
    clientId: c.clientId!,
    clientSecret: c.clientSecret!,
    deviceId: c.deviceId!,
    modelId: c.modelId,
    region: c.authRegion,
    caPem: ctx.caPem,
    log: ctx.log,
    userAgent: c.userAgent ?? `cic-runtime/${RUNTIME_VERSION}`,
  });
}

export function tokenManager(ctx: Context, opts: { autoRefresh: boolean }): TokenManager {
  return new TokenManager({ auth: authClient(ctx), store: tokenStore(ctx), log: ctx.log, deviceId: ctx.config.deviceId, autoRefresh: opts.autoRefresh });
}
