// Configuration: a JSON file (--config PATH), overridden by the environment, overridden by
// flags; validated once at start. Key, variable and flag names are a contract.
import { accessSync, constants, readFileSync } from 'node:fs';
import { CicError } from './errors';
import { LOG_LEVELS, type LogLevel } from './log';
import { registerSecret } from './util/secrets';
import { validateUserAgent } from './cic/user-agent';
import { jsonErrorOffset, lineColumn } from './util/json-position';

export interface Config {
  authUrl?: string;
  cicUrl?: string;
  clientId?: string;
  clientSecret?: string;
  deviceId?: string;
  modelId?: string;
  userAgent?: string;
  tokenFile: string;
  caFile?: string;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  logLevel: LogLevel;
  authRegion: 'KR' | 'JP';
  deviceKeyFile?: string;
  pingMode: 'frame' | 'http';
  connectTimeoutMs: number;
  eventQueueSize: number;
  eventQueueMaxAgeMs: number;
}

export type ConfigKey = keyof Config;
type Kind = 'url' | 'string' | 'secret' | 'id' | 'int' | 'enum' | 'file' | 'path' | 'ua';

export interface ConfigKeyInfo {
  key: ConfigKey;
  env: string;
  flag: string;
  kind: Kind;
  default?: string | number;
  min?: number;
  max?: number;
  values?: readonly string[];
  description: string;
}

export const CONFIG_KEYS: readonly ConfigKeyInfo[] = [
  { key: 'authUrl', env: 'CIC_AUTH_URL', flag: 'auth-url', kind: 'url', description: 'Clova auth server base URL (https)' },
  { key: 'cicUrl', env: 'CIC_URL', flag: 'cic-url', kind: 'url', description: 'CIC server URL (https)' },
  { key: 'clientId', env: 'CIC_CLIENT_ID', flag: 'client-id', kind: 'string', description: 'client ID from the Clova developer console' },
  { key: 'clientSecret', env: 'CIC_CLIENT_SECRET', flag: 'client-secret', kind: 'secret', description: 'client secret (never logged)' },
  { key: 'deviceId', env: 'CIC_DEVICE_ID', flag: 'device-id', kind: 'id', description: 'device UUID or MAC-derived id' },
  { key: 'modelId', env: 'CIC_MODEL_ID', flag: 'model-id', kind: 'id', description: 'device model id (optional)' },
  { key: 'userAgent', env: 'CIC_USER_AGENT', flag: 'user-agent', kind: 'ua', description: 'Manufacturer/Product/1.2.3 (OS;Hardware[;key=value])' },
  { key: 'tokenFile', env: 'CIC_TOKEN_FILE', flag: 'token-file', kind: 'path', default: '/var/lib/cic-runtime/token', description: 'token file on flash (its directory is created 0700)' },
  { key: 'caFile', env: 'CIC_CA_FILE', flag: 'ca-file', kind: 'file', description: 'extra trusted CA certificate (PEM)' },
  { key: 'pingIntervalMs', env: 'CIC_PING_INTERVAL_MS', flag: 'ping-interval-ms', kind: 'int', default: 60_000, min: 1_000, max: 3_600_000, description: 'HTTP/2 PING every this many ms (CIC: every minute)' },
  { key: 'pingTimeoutMs', env: 'CIC_PING_TIMEOUT_MS', flag: 'ping-timeout-ms', kind: 'int', default: 10_000, min: 100, max: 600_000, description: 'no PING ACK within this → new connection' },
  { key: 'logLevel', env: 'CIC_LOG_LEVEL', flag: 'log-level', kind: 'enum', default: 'info', values: LOG_LEVELS, description: 'debug | info | warn | error | silent (JSON lines on stderr)' },
  { key: 'authRegion', env: 'CIC_AUTH_REGION', flag: 'auth-region', kind: 'enum', default: 'KR', values: ['KR', 'JP'], description: 'KR: NAVER access token; JP: LINE authorization code' },
  { key: 'deviceKeyFile', env: 'CIC_DEVICE_KEY_FILE', flag: 'device-key-file', kind: 'file', description: '32-byte key sealing the token file (AES-256-GCM), 0600' },
  { key: 'pingMode', env: 'CIC_PING_MODE', flag: 'ping-mode', kind: 'enum', default: 'frame', values: ['frame', 'http'], description: 'frame: HTTP/2 PING; http: GET /ping expecting 204' },
  { key: 'connectTimeoutMs', env: 'CIC_CONNECT_TIMEOUT_MS', flag: 'connect-timeout-ms', kind: 'int', default: 10_000, min: 500, max: 300_000, description: 'TCP + TLS + first SETTINGS deadline' },
  { key: 'eventQueueSize', env: 'CIC_EVENT_QUEUE_SIZE', flag: 'event-queue-size', kind: 'int', default: 16, min: 1, max: 10_000, description: 'events that may wait for a connection' },
  { key: 'eventQueueMaxAgeMs', env: 'CIC_EVENT_QUEUE_MAX_AGE_MS', flag: 'event-queue-max-age-ms', kind: 'int', default: 30_000, min: 100, max: 3_600_000, description: 'a waiting event older than this fails' },
];

export const CONFIG_FLAGS: readonly string[] = ['config', ...CONFIG_KEYS.map((k) => k.flag)];

export interface LoadConfigOptions {
  /** Flags as parsed (kebab-case names, without dashes). */
  flags?: Record<string, string | boolean | undefined>;
  env?: NodeJS.ProcessEnv;
  /** Keys this command cannot work without. */
  require?: readonly ConfigKey[];
  /** File readability check (injected in tests). */
  canRead?: (path: string) => boolean;
}

type Source = 'file' | 'env' | 'flag' | 'default';
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function defaultCanRead(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CicError('CONFIG_UNREADABLE', `cannot read the config file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { details: { path } });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Never V8's message: it quotes the file, and the file holds the client secret.
    const offset = jsonErrorOffset(text);
    const at = offset >= 0 ? lineColumn(text, offset) : undefined;
    throw new CicError('CONFIG_UNREADABLE', `the config file ${path} is not valid JSON${at ? ` (line ${at.line}, column ${at.column})` : ''}`, {
      cause: undefined,
      details: { path, ...(at ?? {}) },
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CicError('CONFIG_UNREADABLE', `the config file ${path} must hold a JSON object`, { details: { path } });
  }
  return value as Record<string, unknown>;
}

/** Builds the configuration from file < environment < flags, and validates it. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const flags = options.flags ?? {};
  const env = options.env ?? process.env;
  const canRead = options.canRead ?? defaultCanRead;
  const problems: string[] = [];
  const raw = new Map<ConfigKey, { value: unknown; source: Source; from: string }>();

  const configPath = typeof flags.config === 'string' ? flags.config : env.CIC_CONFIG;
  if (configPath) {
    const file = readConfigFile(configPath);
    const known = new Map(CONFIG_KEYS.map((k) => [k.key as string, k]));
    for (const [k, v] of Object.entries(file)) {
      const info = known.get(k);
      if (!info) {
        problems.push(`${k} (from ${configPath}): unknown key`);
        continue;
      }
      raw.set(info.key, { value: v, source: 'file', from: configPath });
    }
  }
  for (const info of CONFIG_KEYS) {
    const e = env[info.env];
    if (e !== undefined && e !== '') raw.set(info.key, { value: e, source: 'env', from: info.env });
    const f = flags[info.flag];
    if (f !== undefined) raw.set(info.key, { value: f, source: 'flag', from: `--${info.flag}` });
  }

  const out: Record<string, unknown> = {};
  for (const info of CONFIG_KEYS) {
    const entry = raw.get(info.key);
    const value = entry?.value ?? info.default;
    if (value === undefined) continue;
    const where = entry ? `${info.key} (from ${entry.from})` : `${info.key} (default)`;
    const checked = check(info, value, canRead);
    if (typeof checked === 'object' && checked !== null && 'problem' in checked) problems.push(`${where}: ${checked.problem}`);
    else out[info.key] = checked;
  }
  if (typeof out.pingTimeoutMs === 'number' && typeof out.pingIntervalMs === 'number' && out.pingTimeoutMs >= out.pingIntervalMs) {
    problems.push(`pingTimeoutMs: must be smaller than pingIntervalMs (${out.pingIntervalMs})`);
  }
  for (const key of options.require ?? []) {
    if (out[key] === undefined && !problems.some((p) => p.startsWith(`${key} `))) {
      const info = CONFIG_KEYS.find((k) => k.key === key)!;
      problems.push(`${key}: required (config file key "${key}", environment ${info.env} or --${info.flag})`);
    }
  }
  if (problems.length) {
    throw new CicError('CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`, { details: { problems } });
  }
  return out as unknown as Config;
}

function check(info: ConfigKeyInfo, value: unknown, canRead: (p: string) => boolean): unknown {
  const text = typeof value === 'string' ? value : undefined;
  switch (info.kind) {
    case 'int': {
      const n = typeof value === 'number' ? value : text !== undefined && /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
      if (!Number.isSafeInteger(n) || n < (info.min ?? 0) || n > (info.max ?? Number.MAX_SAFE_INTEGER)) {
        return { problem: `must be an integer between ${info.min} and ${info.max}` };
      }
      return n;
    }
    case 'enum':
      if (text === undefined || !info.values!.includes(text)) return { problem: `must be one of ${info.values!.join(', ')}` };
      return text;
    default:
      break;
  }
  if (text === undefined || text.length === 0) return { problem: 'must be a non-empty string' };
  switch (info.kind) {
    case 'url': {
      let u: URL;
      try {
        u = new URL(text);
      } catch {
        return { problem: 'is not a valid URL' };
      }
      // TLS is never optional: there is no plain-HTTP mode and no switch that skips verification.
      if (u.protocol !== 'https:') return { problem: 'must be an https:// URL' };
      if (u.username || u.password) return { problem: 'must not carry credentials' };
      return text;
    }
    case 'secret':
      registerSecret(text);
      if (/[\r\n]/.test(text)) return { problem: 'must be one line' };
      return text;
    case 'id':
      if (!ID.test(text)) return { problem: 'must be 1–128 characters of [A-Za-z0-9._:-]' };
      return text;
    case 'ua': {
      const r = validateUserAgent(text);
      return r.ok ? text : { problem: `invalid User-Agent: ${r.reason}` };
    }
    case 'file':
      if (!canRead(text)) return { problem: `cannot read ${text}` };
      return text;
    case 'path':
      if (text.includes('\0')) return { problem: 'is not a valid path' };
      return text;
    default:
      if (/[\r\n\0]/.test(text)) return { problem: 'must be one line' };
      return text;
  }
}
