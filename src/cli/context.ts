// Builds what the auth commands and `run` share beyond base-context.ts: the Clova auth client
// and the token manager. Nothing here touches the network.
import { tokenStore, type Context } from './base-context';
import { ClovaAuthClient } from '../auth/clova-auth';
import { TokenManager } from '../auth/token-manager';
import { RUNTIME_VERSION } from '../version';

export { createContext, tokenStore, type Context } from './base-context';

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
