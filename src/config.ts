// Configuration: a JSON file (--config PATH, or CIC_CONFIG), overridden by the environment,
// overridden by flags; validated once at start. File keys, environment variables and flags
// are a contract; README and --help are generated from CONFIG_KEYS.
//
// Keys beyond the contract (defaults and why):
//
//   key                 environment                 default  meaning / reason
//   deviceKeyFile       CIC_DEVICE_KEY_FILE         —        32-byte AES-256-GCM key (0600) sealing the token file;
//                                                            unset = token file stored plain (0600)
//   pingMode            CIC_PING_MODE               frame    frame: HTTP/2 PING (CIC's rule); http: GET /ping expecting
//                                                            204, for proxies or stacks that cannot pass PING frames
//   connectTimeoutMs    CIC_CONNECT_TIMEOUT_MS      10000    TCP + TLS + first SETTINGS; a cold handshake on a slow ARM
//                                                            core over a poor link takes seconds, not tens of seconds
//   eventQueueSize      CIC_EVENT_QUEUE_SIZE        16       events waiting for a connection; bounded so an outage cannot
//                                                            grow memory
//   eventQueueMaxAgeMs  CIC_EVENT_QUEUE_MAX_AGE_MS  30000    an utterance answered half a minute late is worse than an error
//   eventTimeoutMs      CIC_EVENT_TIMEOUT_MS        60000    an event exchange that moves no byte this long fails: a server
//                                                            that accepts a request and never answers cannot hold it forever
//   clientSecretFile    CIC_CLIENT_SECRET_FILE      —        a file (0600/0400) holding the client secret, e.g. a systemd
//                                                            credential; keeps the secret out of a shared config file
//   socketPath          CIC_SOCKET (--socket)       —        `run` serves the device socket here (Wyoming framing, 0660:
//                                                            access by the socket's group); unset = stdin/stdout only
//
// Decisions:
// - pingTimeoutMs defaults to 10 s and must stay below pingIntervalMs: a live link ACKs within
//   one RTT (well under 1 s even on congested Wi-Fi); 10 s absorbs bufferbloat, and a dead
//   link is still noticed within interval + timeout = 70 s. CIC says "reconnect at once".
// - https only, for both URLs, loopback included: the runtime never turns TLS off, tests use a
//   generated CA through caFile. cicUrl is an origin: the runtime adds /v1/… and /ping itself.
// - Unknown keys in the file are errors (with a "did you mean"): a misspelt pingIntervalMs
//   silently running on the default is the failure this prevents.
// - An empty environment variable counts as unset (shell `VAR=` idiom); an empty flag or file
//   value is an error; `null` in the file means unset.
// - Relative paths in the file are relative to the file's directory; from the environment or
//   a flag, to the working directory. The loaded config holds absolute paths.
// - Values are never quoted in messages except numbers and enum words; clientSecret is
//   registered with the redactor the moment it is read, from every layer.
// - deviceId "auto" is resolved here, once, by loadConfig (util/device-id): every command of
//   one machine sends and shows the same id, and commands that load no configuration
//   (--version, --help) never look at the machine.
// - clientSecretFile is read here too (one line, the trailing newline dropped, refused when
//   group/other may read it); giving it next to clientSecret is an error, not a precedence.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { CicError } from './errors';
import { LOG_LEVELS, type LogLevel } from './log';
import { redactText, registerSecret } from './util/secrets';
import { jsonErrorOffset, lineColumn } from './util/json-position';
import { validateUserAgent } from './cic/user-agent';
import { PING_INTERVAL_MS, PING_TIMEOUT_MS } from './cic/keepalive';
import { EVENT_QUEUE_MAX_AGE_MS, EVENT_QUEUE_SIZE } from './cic/event-queue';
import { EVENT_IDLE_TIMEOUT_MS } from './cic/event-sender';
import { AUTO_DEVICE_ID, deriveDeviceId, type DeviceIdSources } from './util/device-id';
import { readSecretFileSync, type SecretCheck } from './util/secret-text';

export type AuthRegion = 'KR' | 'JP';
export type PingMode = 'frame' | 'http';

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
  authRegion: AuthRegion;
  deviceKeyFile?: string;
  pingMode: PingMode;
  connectTimeoutMs: number;
  eventQueueSize: number;
  eventQueueMaxAgeMs: number;
  eventTimeoutMs: number;
  clientSecretFile?: string;
  socketPath?: string;
}

export type ConfigKey = keyof Config;
export type ConfigDefaults = Pick<Config, 'tokenFile' | 'pingIntervalMs' | 'pingTimeoutMs' | 'logLevel' | 'authRegion' | 'pingMode' | 'connectTimeoutMs' | 'eventQueueSize' | 'eventQueueMaxAgeMs' | 'eventTimeoutMs'>;

export const CONNECT_TIMEOUT_MS = 10_000; // TCP + TLS + first SETTINGS (same as the h2 layer's default)

export const CONFIG_DEFAULTS: Readonly<ConfigDefaults> = Object.freeze({
  tokenFile: '/var/lib/cic-runtime/token', // persistent flash, not /tmp (tmpfs loses the pairing on reboot)
  pingIntervalMs: PING_INTERVAL_MS, // 60 s: CIC "PING every minute"
  pingTimeoutMs: PING_TIMEOUT_MS, // 10 s: see "Decisions" above
  logLevel: 'info',
  authRegion: 'KR',
  pingMode: 'frame',
  connectTimeoutMs: CONNECT_TIMEOUT_MS,
  eventQueueSize: EVENT_QUEUE_SIZE, // 16 events
  eventQueueMaxAgeMs: EVENT_QUEUE_MAX_AGE_MS, // 30 s
  eventTimeoutMs: EVENT_IDLE_TIMEOUT_MS, // 60 s without a byte moved
});

/**
 * url: https URL; origin: https://host[:port] only; id: [A-Za-z0-9._:-]; secret: never echoed;
 * path: any path (made absolute); file: a path that must be readable at load.
 */
export type ConfigType = 'url' | 'origin' | 'string' | 'secret' | 'id' | 'user-agent' | 'path' | 'file' | 'integer' | 'enum';

export interface ConfigKeyInfo {
  key: ConfigKey;
  env: string;
  flag: string;
  type: ConfigType;
  default?: string | number;
  /** Bounds of an integer, inclusive. */
  min?: number;
  max?: number;
  /** Words of an enum. */
  values?: readonly string[];
  description: string;
}

const D = CONFIG_DEFAULTS;

export const CONFIG_KEYS: readonly ConfigKeyInfo[] = [
  { key: 'authUrl', env: 'CIC_AUTH_URL', flag: 'auth-url', type: 'url', description: 'Clova auth server base URL (https)' },
  { key: 'cicUrl', env: 'CIC_URL', flag: 'cic-url', type: 'origin', description: 'CIC server, https://host[:port]' },
  { key: 'clientId', env: 'CIC_CLIENT_ID', flag: 'client-id', type: 'string', description: 'client ID' },
  { key: 'clientSecret', env: 'CIC_CLIENT_SECRET', flag: 'client-secret', type: 'secret', description: 'client secret; never logged (a flag shows in ps and warns: use the file or env)' },
  { key: 'deviceId', env: 'CIC_DEVICE_ID', flag: 'device-id', type: 'id', description: 'device UUID, or "auto": a UUID derived from /etc/machine-id, else the first hardware MAC' },
  { key: 'modelId', env: 'CIC_MODEL_ID', flag: 'model-id', type: 'id', description: 'device model id (optional)' },
  { key: 'userAgent', env: 'CIC_USER_AGENT', flag: 'user-agent', type: 'user-agent', description: 'Manufacturer/Product/1.2.3 (OS;Hardware[;key=urlencoded])' },
  { key: 'tokenFile', env: 'CIC_TOKEN_FILE', flag: 'token-file', type: 'path', default: D.tokenFile, description: 'token file on flash (directory made 0700)' },
  { key: 'caFile', env: 'CIC_CA_FILE', flag: 'ca-file', type: 'file', description: 'extra trusted CA certificate (PEM)' },
  { key: 'pingIntervalMs', env: 'CIC_PING_INTERVAL_MS', flag: 'ping-interval-ms', type: 'integer', default: D.pingIntervalMs, min: 1_000, max: 3_600_000, description: 'ms between pings (CIC: every minute)' },
  { key: 'pingTimeoutMs', env: 'CIC_PING_TIMEOUT_MS', flag: 'ping-timeout-ms', type: 'integer', default: D.pingTimeoutMs, min: 100, max: 600_000, description: 'ms without ACK → new connection; < pingIntervalMs' },
  { key: 'logLevel', env: 'CIC_LOG_LEVEL', flag: 'log-level', type: 'enum', default: D.logLevel, values: LOG_LEVELS, description: 'JSON lines on stderr' },
  { key: 'authRegion', env: 'CIC_AUTH_REGION', flag: 'auth-region', type: 'enum', default: D.authRegion, values: ['KR', 'JP'], description: 'KR: NAVER access token; JP: LINE authorization code' },
  { key: 'deviceKeyFile', env: 'CIC_DEVICE_KEY_FILE', flag: 'device-key-file', type: 'file', description: '32-byte key (0600) sealing the token file, AES-256-GCM' },
  { key: 'pingMode', env: 'CIC_PING_MODE', flag: 'ping-mode', type: 'enum', default: D.pingMode, values: ['frame', 'http'], description: 'frame: HTTP/2 PING; http: GET /ping → 204' },
  { key: 'connectTimeoutMs', env: 'CIC_CONNECT_TIMEOUT_MS', flag: 'connect-timeout-ms', type: 'integer', default: D.connectTimeoutMs, min: 500, max: 300_000, description: 'ms for TCP + TLS + first SETTINGS' },
  { key: 'eventQueueSize', env: 'CIC_EVENT_QUEUE_SIZE', flag: 'event-queue-size', type: 'integer', default: D.eventQueueSize, min: 1, max: 10_000, description: 'events that may wait for a connection' },
  { key: 'eventQueueMaxAgeMs', env: 'CIC_EVENT_QUEUE_MAX_AGE_MS', flag: 'event-queue-max-age-ms', type: 'integer', default: D.eventQueueMaxAgeMs, min: 100, max: 3_600_000, description: 'ms a waiting event may wait before it fails' },
  { key: 'eventTimeoutMs', env: 'CIC_EVENT_TIMEOUT_MS', flag: 'event-timeout-ms', type: 'integer', default: D.eventTimeoutMs, min: 1000, max: 3_600_000, description: 'ms an event exchange may move no byte before it fails' },
  { key: 'clientSecretFile', env: 'CIC_CLIENT_SECRET_FILE', flag: 'client-secret-file', type: 'file', description: 'file (0600) holding the client secret, instead of clientSecret' },
  { key: 'socketPath', env: 'CIC_SOCKET', flag: 'socket', type: 'path', description: 'run: device socket (Unix, Wyoming framing, mode 0660) for local programs' },
];

/** Every value flag the configuration understands, `config` included (without dashes). */
export const CONFIG_FLAGS: readonly string[] = ['config', ...CONFIG_KEYS.map((k) => k.flag)];

/** The three layers, lowest first. Pure data: validateConfig reads nothing from disk unless asked. */
export interface ConfigLayers {
  file?: { path: string; values: Record<string, unknown> };
  env?: Record<string, string | undefined>;
  /** Parsed flags, kebab-case names without dashes; flags that are not configuration are ignored. */
  flags?: Record<string, string | boolean | undefined>;
  /** Base for relative paths from env and flags; default process.cwd(). */
  cwd?: string;
}

export interface ValidateOptions {
  /** Keys this command cannot work without (all given keys are validated regardless). */
  require?: readonly ConfigKey[];
  /**
   * Checks caFile/deviceKeyFile: returns a reason when `path` cannot be read. null skips the
   * check (pure validation); default: stat + access on the real file system.
   */
  fileProblem?: ((path: string) => string | undefined) | null;
  /**
   * Reads clientSecretFile into clientSecret. null skips the read (pure validation; the file
   * then still satisfies a required clientSecret); default: readSecretFileSync.
   */
  readSecret?: ((path: string) => SecretCheck) | null;
  /**
   * Resolves deviceId "auto". null leaves "auto" as it is (pure validation); default: the
   * machine's own sources (util/device-id).
   */
  deviceIdSources?: DeviceIdSources | null;
}

export interface LoadConfigOptions {
  flags?: Record<string, string | boolean | undefined>;
  env?: Record<string, string | undefined>;
  /** Config file; default the `config` flag, then CIC_CONFIG. */
  configPath?: string;
  require?: readonly ConfigKey[];
  /** Replaces the file readability check (tests). */
  canRead?: (path: string) => boolean;
  /** Replaces the machine's device-id sources for deviceId "auto" (tests). */
  deviceIdSources?: DeviceIdSources;
  cwd?: string;
}

interface Raw {
  value: unknown;
  /** `/etc/cic.json`, `CIC_URL`, `--cic-url`. */
  from: string;
  /** Base directory for relative paths. */
  base: string;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const MAX_STRING = 1024;

/** Reads and parses the file; CONFIG_UNREADABLE names the path and the position, never the content. */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'read error';
    throw new CicError('CONFIG_UNREADABLE', `cannot read the config file ${path}: ${code}`, { details: { path, errno: code } });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // editors on other systems add a BOM
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Never V8's message nor the SyntaxError as cause: both quote the text, which holds the secret.
    const offset = jsonErrorOffset(text);
    const at = lineColumn(text, offset >= 0 ? offset : text.length);
    throw new CicError('CONFIG_UNREADABLE', `the config file ${path} is not valid JSON (line ${at.line}, column ${at.column})`, { details: { path, ...at } });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CicError('CONFIG_UNREADABLE', `the config file ${path} must hold a JSON object`, { details: { path } });
  }
  return value as Record<string, unknown>;
}

/** Default readability check: a regular file this process may open for reading. */
export function fileProblem(path: string): string | undefined {
  try {
    if (!statSync(path).isFile()) return `${path} is not a regular file`;
    accessSync(path, constants.R_OK);
    return undefined;
  } catch (e) {
    return `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})`;
  }
}

/** file < env < flags, validated; throws one CONFIG_INVALID listing every problem. */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const flags = options.flags ?? {};
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const flagPath = flags.config;
  if (flagPath !== undefined && (typeof flagPath !== 'string' || flagPath === '')) {
    throw new CicError('USAGE', '--config needs a path');
  }
  const path = options.configPath ?? flagPath ?? (env.CIC_CONFIG || undefined);
  const layers: ConfigLayers = { env, flags, cwd };
  if (path !== undefined) {
    const abs = resolve(cwd, path);
    layers.file = { path: abs, values: readConfigFile(abs) };
  }
  const canRead = options.canRead;
  return validateConfig(layers, {
    require: options.require,
    fileProblem: canRead ? (p) => (canRead(p) ? undefined : `cannot read ${p}`) : fileProblem,
    deviceIdSources: options.deviceIdSources ?? {},
  });
}

/** Merges and validates the layers. The returned object holds defaults and absolute paths. */
export function validateConfig(layers: ConfigLayers, options: ValidateOptions = {}): Config {
  const env = layers.env ?? {};
  const flags = layers.flags ?? {};
  const cwd = layers.cwd ?? process.cwd();
  const problems: string[] = [];
  const chosen = new Map<ConfigKey, Raw>();

  // Secrets first, from every layer (an overridden value is still a secret), before any text
  // that might contain one is produced. The pattern also catches misspelt keys
  // ("clientSecrte"), whose values are refused unseen. clientSecretFile holds a path, which
  // messages must be able to name; its content is registered once read.
  const protect = (key: string, v: unknown) => {
    if (typeof v === 'string' && /sec|pass/i.test(key) && key !== 'clientSecretFile') registerSecret(v);
  };

  if (layers.file) {
    const { path, values } = layers.file;
    for (const [k, v] of Object.entries(values)) {
      protect(k, v);
      const info = CONFIG_KEYS.find((i) => i.key === k);
      if (!info) {
        const guess = suggest(k);
        problems.push(`${k} (from ${path}): unknown key${guess ? ` (did you mean ${guess}?)` : ''}`);
      } else if (v !== null) {
        chosen.set(info.key, { value: v, from: path, base: dirname(path) });
      }
    }
  }
  for (const info of CONFIG_KEYS) {
    const e = env[info.env];
    protect(info.key, e);
    if (e !== undefined && e !== '') chosen.set(info.key, { value: e, from: info.env, base: cwd });
    const f = flags[info.flag];
    protect(info.key, f);
    if (f !== undefined) chosen.set(info.key, { value: f, from: `--${info.flag}`, base: cwd });
  }

  const out: Record<string, unknown> = {};
  const label = new Map<ConfigKey, string>();
  for (const info of CONFIG_KEYS) {
    const raw = chosen.get(info.key);
    if (!raw) {
      if (info.default !== undefined) out[info.key] = info.default;
      continue;
    }
    const where = `${info.key} (from ${raw.from})`;
    label.set(info.key, where);
    const r = coerce(info, raw);
    if ('problem' in r) problems.push(`${where}: ${r.problem}`);
    else out[info.key] = r.value;
  }

  if (typeof out.pingTimeoutMs === 'number' && typeof out.pingIntervalMs === 'number' && out.pingTimeoutMs >= out.pingIntervalMs) {
    const from = (k: ConfigKey) => `${out[k]} ${chosen.has(k) ? `from ${chosen.get(k)!.from}` : 'by default'}`;
    problems.push(`pingTimeoutMs: must be smaller than pingIntervalMs (pingTimeoutMs ${from('pingTimeoutMs')}, pingIntervalMs ${from('pingIntervalMs')})`);
  }

  const check = options.fileProblem === undefined ? fileProblem : options.fileProblem;
  const unreadable = new Set<ConfigKey>();
  if (check) {
    for (const info of CONFIG_KEYS) {
      const p = out[info.key];
      if (info.type !== 'file' || typeof p !== 'string') continue;
      const why = check(p);
      if (why) {
        problems.push(`${label.get(info.key) ?? info.key}: ${why}`);
        unreadable.add(info.key);
      }
    }
  }

  if (chosen.has('clientSecretFile')) {
    if (chosen.has('clientSecret')) {
      problems.push(`clientSecretFile (from ${chosen.get('clientSecretFile')!.from}): give either clientSecret (from ${chosen.get('clientSecret')!.from}) or clientSecretFile, not both`);
    } else if (typeof out.clientSecretFile === 'string' && !unreadable.has('clientSecretFile')) {
      const read = options.readSecret === undefined ? readSecretFileSync : options.readSecret;
      const r = read?.(out.clientSecretFile);
      if (r && 'problem' in r) problems.push(`${label.get('clientSecretFile')}: ${r.problem}`);
      else if (r) {
        registerSecret(r.value);
        out.clientSecret = r.value;
      }
    }
  }

  if (out.deviceId === AUTO_DEVICE_ID && options.deviceIdSources !== null) {
    try {
      out.deviceId = deriveDeviceId(options.deviceIdSources ?? {}).id;
    } catch (e) {
      problems.push(`${label.get('deviceId')}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  for (const key of options.require ?? []) {
    if (out[key] !== undefined || label.has(key)) continue; // present, or already reported as invalid
    if (key === 'clientSecret' && label.has('clientSecretFile')) continue; // read, or reported, above
    const info = CONFIG_KEYS.find((k) => k.key === key)!;
    problems.push(`${key}: required (config file key "${key}", environment ${info.env} or --${info.flag})`);
  }

  if (problems.length) {
    // CicError redacts its message, not its details: redact those here.
    throw new CicError('CONFIG_INVALID', `invalid configuration:\n  ${problems.join('\n  ')}`, { details: { problems: problems.map(redactText) } });
  }
  return out as unknown as Config;
}

type Checked = { value: unknown } | { problem: string };

/** ` (got "5s")`, for numbers and enum words only: other fields may hold secrets or paths. */
function got(v: unknown): string {
  if (typeof v === 'number') return ` (got ${v})`;
  if (typeof v === 'string' && v.length <= 32 && /^[\x20-\x7e]*$/.test(v)) return ` (got ${JSON.stringify(v)})`;
  if (typeof v === 'string') return '';
  return ` (got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`})`;
}

function coerce(info: ConfigKeyInfo, raw: Raw): Checked {
  const v = raw.value;
  if (info.type === 'integer') {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d{1,16}\s*$/.test(v) ? Number(v) : NaN;
    if (Number.isSafeInteger(n) && n >= info.min! && n <= info.max!) return { value: n };
    return { problem: `must be an integer between ${info.min} and ${info.max}${got(v)}` };
  }
  if (typeof v !== 'string') return { problem: `must be a string${got(v)}` };
  if (info.type === 'enum') {
    // Case-insensitive (kr, INFO) but stored in canonical spelling.
    const word = info.values!.find((w) => w.toLowerCase() === v.trim().toLowerCase());
    return word !== undefined ? { value: word } : { problem: `must be one of ${info.values!.join(', ')}${got(v)}` };
  }
  if (v === '') return { problem: 'must not be empty' };
  if (v.length > MAX_STRING) return { problem: `is longer than ${MAX_STRING} characters` };
  if (/[\x00-\x1f\x7f]/.test(v)) return { problem: 'must be one line without control characters' };
  if (v.trim() !== v) return { problem: 'has leading or trailing whitespace (a copy-paste slip?)' };
  switch (info.type) {
    case 'url':
    case 'origin': {
      let u: URL;
      try {
        u = new URL(v);
      } catch {
        return { problem: 'is not a valid URL' };
      }
      // TLS is never optional: there is no plain-HTTP mode and no switch that skips verification.
      if (u.protocol !== 'https:') return { problem: `must be an https:// URL (got ${u.protocol})` };
      if (u.username || u.password) return { problem: 'must not carry credentials' };
      if (u.search || u.hash) return { problem: 'must not have a query or fragment' };
      if (info.type === 'origin' && u.pathname !== '/') {
        return { problem: 'must be https://host[:port] without a path (the runtime adds /v1/directives, /v1/events, /ping)' };
      }
      return { value: v };
    }
    case 'id':
      return ID.test(v) ? { value: v } : { problem: 'must be 1–128 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit' };
    case 'user-agent': {
      const r = validateUserAgent(v);
      return r.ok ? { value: v } : { problem: `invalid User-Agent: ${r.reason}` };
    }
    case 'path':
    case 'file':
      return { value: isAbsolute(v) ? v : resolve(raw.base, v) };
    default: // string, secret: the checks above; a secret's value is never part of a message
      return { value: v };
  }
}

/** A known key that `k` probably meant: same letters ignoring case, dashes and underscores. */
function suggest(k: string): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');
  const want = norm(k);
  const hit = CONFIG_KEYS.find((i) => [i.key, i.flag, i.env, i.env.replace(/^CIC_/, '')].some((n) => norm(n) === want));
  return hit?.key;
}
