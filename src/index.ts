// Public library API of cic-runtime.
export { Connection, type ConnectOptions, type RequestOptions, type ConnectionEvents, type ConnectionStats, type GoawayInfo } from './h2/connection';
export { ClientStream, type ResponseHead, type Headers, type CollectedResponse } from './h2/stream';
export { loadBinding, addonFileName, ADDON_PATH_ENV, type NativeBinding, type NativeSessionOptions } from './h2/native';
export { H2_ERROR } from './h2/constants';
export { CicError, ERROR_CODES, isCicError, type ErrorCode } from './errors';
export { createLogger, type Logger, type LogLevel } from './log';
export { systemClock, type Clock } from './util/clock';
export { Backoff, type BackoffOptions } from './util/backoff';
export { RUNTIME_VERSION } from './version';
export { CicClient, type CicClientOptions, type CicClientEvents } from './cic/client';
export { readDirectives } from './cic/directive-reader';
export type { EventResult, OutgoingEvent, ReceivedDirective, TokenSource } from './cic/types';
export { preciseClock } from './h2/precise-clock';
