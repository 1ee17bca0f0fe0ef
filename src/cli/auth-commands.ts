// login, refresh, logout, oauth-token (status: status-command.ts).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { CicError } from '../errors';
import { termsRequired } from '../auth/clova-auth';
import type { AgreementOutcome } from '../auth/agreement';
import { ClientCredentialsClient, type CachedClientToken, type ClientTokenCache } from '../auth/client-credentials';
import { writeFileAtomic } from '../util/atomic-file';
import { EXIT } from './exit-codes';
import { tokenManager, tokenStore, type Context } from './context';
import type { LoginSecret } from './login-secret';

export interface LoginArgs {
  /** From cli/login-secret: an account token (authorize → token) or an authorization code (token). */
  secret: LoginSecret;
  /** From --agreement-redirect: the outcome of the terms page of an earlier exit 4. */
  agreement?: AgreementOutcome;
}

export async function login(ctx: Context, stdout: Writable, args: LoginArgs): Promise<number> {
  if (args.agreement && !args.agreement.ok) {
    // Contract: exit 4 with one JSON line on stdout, as for the terms line itself; nothing
    // is sent to the server (a declined agreement leaves nothing to exchange).
    ctx.log.error(args.agreement.error.message, { code: args.agreement.error.code, reason: args.agreement.reason });
    stdout.write(JSON.stringify({ agreement: 'failure', reason: args.agreement.reason }) + '\n');
    return EXIT.TERMS;
  }
  if (args.agreement) ctx.log.info('terms agreed; logging in', { with: args.secret.kind });
  const tm = tokenManager(ctx, { autoRefresh: false });
  try {
    await tm.start();
    const result = args.secret.kind === 'code' ? await tm.loginWithCode(args.secret.value) : await tm.login(args.secret.value);
    // A one-shot command that could not save has lost the pairing when it exits.
    if (!result.persisted) throw new CicError('STORE_WRITE_FAILED', `logged in, but the token file ${ctx.config.tokenFile} could not be written`);
    ctx.log.info('logged in', { tokenFile: ctx.config.tokenFile, expiresInMs: result.expiresInMs });
    return EXIT.OK;
  } catch (e) {
    const terms = termsRequired(e);
    if (terms) {
      // Contract: one JSON line on stdout; a device with a screen shows the page, one
      // without hands the URI to its companion app. Then `login --agreement-redirect URL`
      // with the same account token, or with the code (--code-file).
      stdout.write(JSON.stringify({ terms: terms.redirectUri, code: terms.code }) + '\n');
      return EXIT.TERMS;
    }
    throw e;
  } finally {
    await tm.close();
  }
}

export async function refresh(ctx: Context, stdout: Writable): Promise<number> {
  const tm = tokenManager(ctx, { autoRefresh: false });
  try {
    const st = await tm.start();
    if (!st.loggedIn) throw new CicError('AUTH_NOT_LOGGED_IN', `no stored token in ${ctx.config.tokenFile}; log in first`);
    await tm.forceRefresh();
    const after = tm.status();
    if (!after.persisted) throw new CicError('STORE_WRITE_FAILED', `refreshed, but the token file ${ctx.config.tokenFile} could not be written`);
    stdout.write(JSON.stringify({ refreshed: true, expiresAt: after.expiresAt ? new Date(after.expiresAt).toISOString() : null }) + '\n');
    return EXIT.OK;
  } finally {
    await tm.close();
  }
}

export async function logout(ctx: Context, _stdout: Writable, args: { force: boolean }): Promise<number> {
  const tm = tokenManager(ctx, { autoRefresh: false });
  try {
    const st = await tm.start();
    if (!st.loggedIn) {
      await tokenStore(ctx).clear();
      ctx.log.info('not logged in; nothing to revoke', { tokenFile: ctx.config.tokenFile });
      return EXIT.OK;
    }
    const r = await tm.logout({ force: args.force });
    ctx.log.info('logged out', { revoked: r.revoked, tokenFile: ctx.config.tokenFile });
    return EXIT.OK;
  } finally {
    await tm.close();
  }
}

/** The cached client-credentials token lives next to the token file, one file per URL+scope. */
function fileCache(path: string): ClientTokenCache {
  return {
    async load() {
      try {
        return JSON.parse(await readFile(path, 'utf8')) as CachedClientToken;
      } catch {
        return undefined;
      }
    },
    async save(token) {
      await writeFileAtomic(path, Buffer.from(JSON.stringify(token)), { mode: 0o600 });
    },
  };
}

export async function oauthToken(ctx: Context, stdout: Writable, args: { tokenUrl: string; scope: string }): Promise<number> {
  const c = ctx.config;
  const key = createHash('sha256').update(`${args.tokenUrl} ${args.scope} ${c.clientId}`).digest('hex').slice(0, 16);
  const client = new ClientCredentialsClient({
    tokenUrl: args.tokenUrl,
    clientId: c.clientId!,
    clientSecret: c.clientSecret!,
    scope: args.scope,
    caPem: ctx.caPem,
    log: ctx.log,
    cache: fileCache(`${c.tokenFile}.oauth-${key}.json`),
  });
  const token = await client.getToken();
  await client.whenIdle();
  // Alone on stdout, so that `Authorization: Bearer $(cic-runtime oauth-token …)` works.
  stdout.write(`${token.accessToken}\n`);
  return EXIT.OK;
}
