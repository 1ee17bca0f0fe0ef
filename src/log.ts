// JSON-lines logger on stderr. Redaction happens here, once, for every line: values of
// secret-named fields are replaced and registered secret values are scrubbed from all text.

import { REDACTED, isSecretKey, redactText } from './util/secrets';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
export const LOG_LEVELS = Object.keys(LEVELS) as LogLevel[];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  readonly level: LogLevel;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; default process.stderr. */
  write?: (line: string) => void;
  /** Wall clock for the timestamp; injected in tests. */
  now?: () => number;
}

const MAX_DEPTH = 6;

/** A `code` field holding an error code (H2_PING_TIMEOUT, ENOSPC) is not an authorization code. */
function isErrorCode(v: unknown): boolean {
  return typeof v === 'string' && /^[A-Z][A-Z0-9_]{1,63}$/.test(v);
}

function sanitize(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') {
    return typeof value === 'bigint' ? value.toString() : value;
  }
  if (depth > MAX_DEPTH || seen.has(value)) return '[…]';
  seen.add(value);
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: redactText(value.message) };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    const details = (value as { details?: unknown }).details;
    if (details !== undefined) out.details = sanitize(details, depth + 1, seen);
    if (value.stack) out.stack = redactText(value.stack);
    if (value.cause !== undefined) out.cause = sanitize(value.cause, depth + 1, seen);
    return out;
  }
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `[${value.byteLength} bytes]`;
  if (Array.isArray(value)) return value.map((v) => sanitize(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const secret = isSecretKey(k) && v !== undefined && v !== null && v !== '' && !(k === 'code' && isErrorCode(v));
    out[k] = secret ? REDACTED : sanitize(v, depth + 1, seen);
  }
  return out;
}

/** Returns `fields` as they would be logged (secrets removed). */
export function redactFields(fields: Record<string, unknown>): Record<string, unknown> {
  return sanitize(fields, 0, new WeakSet()) as Record<string, unknown>;
}

export function createLogger(options: LoggerOptions = {}, bound: Record<string, unknown> = {}): Logger {
  const level = options.level ?? 'info';
  const threshold = LEVELS[level];
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const now = options.now ?? Date.now;
  const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[lvl] < threshold) return;
    const record = redactFields({ ...bound, ...fields });
    write(JSON.stringify({ t: new Date(now()).toISOString(), level: lvl, msg: redactText(msg), ...record }) + '\n');
  };
  return {
    level,
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(options, { ...bound, ...fields }),
  };
}

/** A logger that drops everything (library default: a library never writes unasked). */
export const silentLogger: Logger = createLogger({ level: 'silent' });
