// `cic-runtime status`: what the token file says, without loading the network stack.
import type { Writable } from 'node:stream';
import { EXIT } from './exit-codes';
import { tokenStore, type Context } from './base-context';

export async function status(ctx: Context, stdout: Writable): Promise<number> {
  const loaded = await tokenStore(ctx).load();
  if (loaded.state === 'corrupt' || loaded.state === 'foreign') {
    stdout.write(JSON.stringify({ loggedIn: false, expiresAt: null, deviceId: ctx.config.deviceId ?? null, tokenFile: ctx.config.tokenFile, store: loaded.state, reason: loaded.reason }) + '\n');
    return EXIT.NOT_LOGGED_IN;
  }
  const ok = loaded.state === 'ok';
  stdout.write(
    JSON.stringify({
      loggedIn: ok,
      expiresAt: ok ? new Date(loaded.tokens.expiresAt).toISOString() : null,
      deviceId: (ok ? loaded.tokens.deviceId : undefined) ?? ctx.config.deviceId ?? null,
      tokenFile: ctx.config.tokenFile,
      ...(ok && loaded.recovered ? { recovered: true } : {}),
    }) + '\n',
  );
  return ok ? EXIT.OK : EXIT.NOT_LOGGED_IN;
}
