// Public library API of cic-runtime: `require('cic-runtime')` (dist/cic-runtime-lib.js, with
// the declarations in dist/types). Everything an application needs to pair a device, keep
// its token fresh and stay connected to CIC; the CLI (src/cli.ts) is built from the same parts.
//
// Hazard: every name exported here is a contract of the package. The library bundle keeps
// every property name as written (no mangling, see scripts/build.mjs), so the declarations in
// dist/types describe the objects exactly; test/75-library-package checks the two agree.

// --- CIC connection -------------------------------------------------------------------------
export { CicClient, type CicClientOptions, type CicClientEvents, type ClientStats } from './cic/client';
export { readDirectives } from './cic/directive-reader';
export { newDialogRequestId } from './cic/message';
export { buildUserAgent, parseUserAgent, validateUserAgent, type UserAgentInput, type UserAgentParts, type UserAgentCheck } from './cic/user-agent';
export type { ClientState, StateChange } from './cic/state';
export type {
  Attachment,
  AudioChunks,
  AudioSource,
  DirectiveHeader,
  DirectiveMessage,
  DirectiveReaderFactory,
  DirectiveReaderLike,
  EventResult,
  IncomingAttachment,
  OutgoingEvent,
  ReceivedDirective,
  TokenSource,
} from './cic/types';

// --- device authorization (Clova auth) and tokens --------------------------------------------
export {
  ClovaAuthClient,
  termsRequired,
  type ClovaAuthApi,
  type ClovaAuthOptions,
  type ClovaAuthTimeouts,
  type ClovaRegion,
  type AuthorizeResult,
  type TermsRequiredDetails,
  type CallOptions,
  type RefreshOptions,
} from './auth/clova-auth';
export {
  TokenManager,
  type TokenManagerOptions,
  type TokenManagerEvents,
  type TokenState,
  type TokenStatus,
  type RefreshReason,
  type RefreshedInfo,
  type LoginResult,
  type LogoutOptions,
} from './auth/token-manager';
export { TokenStore, type TokenStoreOptions } from './auth/token-store';
export type { StoredTokens, StoreLoadResult, TokenPersistence, TokenResponse } from './auth/types';
export {
  ClientCredentialsClient,
  type ClientCredentialsOptions,
  type ClientToken,
  type CachedClientToken,
  type ClientTokenCache,
} from './auth/client-credentials';
export type { RetryPolicy, RetryInfo } from './auth/retry';

// --- errors, logging, time --------------------------------------------------------------------
export { CicError, ERROR_CODES, isCicError, type ErrorCode, type CicErrorOptions } from './errors';
export { createLogger, type Logger, type LoggerOptions, type LogLevel } from './log';
export { systemClock, type Clock, type TimerHandle } from './util/clock';
export { Backoff, type BackoffOptions } from './util/backoff';
export { RUNTIME_VERSION } from './version';

// --- HTTP/2 layer and the native addon ----------------------------------------------------------
export { Connection, type ConnectOptions, type RequestOptions, type ConnectionEvents, type ConnectionStats, type GoawayInfo } from './h2/connection';
export { ClientStream, type ResponseHead, type Headers, type CollectedResponse } from './h2/stream';
export { loadBinding, addonFileName, ADDON_PATH_ENV, type NativeBinding, type NativeSessionOptions } from './h2/native';
export { H2_ERROR } from './h2/constants';
export { preciseClock } from './h2/precise-clock';
