// User-Agent grammar of CIC (PROTOCOL.md §3), checked when the configuration loads so a bad
// string fails on the device at start, not as a refusal from the server later:
//
//   Manufacturer/Product/FirmwareSemVer (OS_Info;HW_Info[;key=urlencoded_value…])
//   Vendor/Client/0.8.2+build (Linux 7.0;Raspberry_pi;domain=Sample%40Clova;type=Test%20Type)
//
// A small hand-written parser rather than one regex, so every refusal can name the piece
// that is wrong. Whole string: printable ASCII only — it becomes an HTTP header, where a CR
// or LF would split the header and non-ASCII has no defined encoding.
import { CicError } from '../errors';

export interface UserAgentParts {
  manufacturer: string;
  product: string;
  /** SemVer as written, e.g. `0.8.2+build`. */
  firmware: string;
  os: string;
  hardware: string;
  /** Extra `key=value` fields in order, values URL-decoded. */
  extra: Record<string, string>;
}

export type UserAgentCheck = { ok: true; parts: UserAgentParts } | { ok: false; reason: string };

export interface UserAgentInput {
  manufacturer: string;
  product: string;
  firmware: string;
  os: string;
  hardware: string;
  /** Raw values; they are URL-encoded here. */
  extra?: Record<string, string>;
}

const MAX_LENGTH = 512; // one header line; far above any real UA, far below header-size limits
// Manufacturer and product: an RFC 9110 token (no space, no '/', no parentheses).
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
// semver.org's reference pattern: N.N.N without leading zeros, optional -pre (numeric
// identifiers without leading zeros) and +build.
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;
const KEY = /^[A-Za-z0-9._~-]+$/;
// Characters a URL-encoded value may hold unencoded: RFC 3986 query characters without the
// ones that are structure here — ';' separates fields, '=' separates the key, '(' ')' close
// the comment. A space, or a '%' not followed by two hex digits, means "not encoded".
const VALUE_CHAR = /[A-Za-z0-9._~!$&'*+,:@\/?-]/;

const fail = (reason: string): UserAgentCheck => ({ ok: false, reason });

function count(s: string, c: string): number {
  return s.split(c).length - 1;
}

/** Checks `ua` against the CIC grammar; the reason names the offending piece. */
export function validateUserAgent(ua: unknown): UserAgentCheck {
  if (typeof ua !== 'string' || ua.length === 0) return fail('must be a non-empty string');
  if (ua.length > MAX_LENGTH) return fail(`is longer than ${MAX_LENGTH} characters`);
  for (let i = 0; i < ua.length; i++) {
    const c = ua.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return fail(`has a control character at position ${i} (only printable ASCII is allowed)`);
    if (c > 0x7e) return fail(`has a non-ASCII character at position ${i} (only printable ASCII is allowed)`);
  }

  // --- the single "(OS_Info;HW_Info…)" comment, last in the string ---------------------------
  const open = ua.indexOf('(');
  const close = ua.lastIndexOf(')');
  if (open < 0 && close < 0) return fail('is missing the "(OS_Info;HW_Info)" comment after the firmware version');
  if (count(ua, '(') !== count(ua, ')') || close < open) return fail('has unbalanced parentheses');
  if (count(ua, '(') > 1) return fail('has nested or repeated parentheses (only one "(OS_Info;HW_Info…)" comment is allowed)');
  if (close !== ua.length - 1) return fail(`has text after the closing parenthesis: "${ua.slice(close + 1)}"`);

  // --- Manufacturer/Product/Firmware --------------------------------------------------------
  let head = ua.slice(0, open);
  if (!head.endsWith(' ') || head.endsWith('  ')) return fail('needs exactly one space between the firmware version and "("');
  head = head.slice(0, -1);
  const names = head.split('/');
  if (names.length < 3) return fail(`"${head}" must be Manufacturer/Product/FirmwareVersion`);
  if (names.length > 3) return fail(`"${head}" must be Manufacturer/Product/FirmwareVersion ("/" is not allowed inside the manufacturer or product)`);
  const [manufacturer, product, firmware] = names as [string, string, string];
  for (const [label, value] of [['manufacturer', manufacturer], ['product', product]] as const) {
    if (value === '') return fail(`${label} is empty`);
    if (value.includes(' ')) return fail(`${label} "${value}" must not contain spaces`);
    if (!TOKEN.test(value)) return fail(`${label} "${value}" may hold only letters, digits and !#$%&'*+-.^_\`|~`);
  }
  if (firmware === '') return fail('firmware version is empty');
  if (!SEMVER.test(firmware)) return fail(`firmware version "${firmware}" is not SemVer N.N.N[-pre][+build] (no leading zeros)`);

  // --- OS_Info;HW_Info[;key=value…] -----------------------------------------------------------
  const fields = ua.slice(open + 1, close).split(';');
  if (fields.length < 2) return fail('the comment needs OS_Info;HW_Info (hardware info is missing)');
  const [os, hardware, ...rest] = fields as [string, string, ...string[]];
  for (const [label, value] of [['OS info', os], ['hardware info', hardware]] as const) {
    if (value.trim() === '') return fail(`${label} is empty`);
    if (value !== value.trim()) return fail(`${label} "${value}" has leading or trailing spaces`);
  }
  const extra: Record<string, string> = {};
  for (let n = 0; n < rest.length; n++) {
    const field = rest[n]!;
    if (field === '') return fail(`extra field ${n + 1} is empty (stray ";")`);
    const eq = field.indexOf('=');
    if (eq < 0) return fail(`extra field "${field}" must be key=urlencoded_value (a ";" inside a value must be encoded as %3B)`);
    const key = field.slice(0, eq);
    const value = field.slice(eq + 1);
    if (key === '') return fail(`extra field "${field}" has an empty key`);
    if (!KEY.test(key)) return fail(`key "${key}" may hold only letters, digits and . _ ~ -`);
    if (Object.prototype.hasOwnProperty.call(extra, key)) return fail(`key "${key}" appears twice`);
    if (value === '') return fail(`value of "${key}" is empty`);
    const bad = badEncoding(value);
    if (bad) return fail(`value of "${key}" is not URL-encoded: ${bad}`);
    let decoded: string;
    try {
      decoded = decodeURIComponent(value);
    } catch {
      return fail(`value of "${key}" is not URL-encoded: its %-escapes are not UTF-8`);
    }
    // defineProperty: a key named "__proto__" must become a field, not the prototype.
    Object.defineProperty(extra, key, { value: decoded, enumerable: true, writable: true, configurable: true });
  }
  return { ok: true, parts: { manufacturer, product, firmware, os, hardware, extra } };
}

function badEncoding(value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '%') {
      if (!/^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) return '"%" must be followed by two hex digits';
      i += 2;
    } else if (c === ' ') {
      return 'raw space (encode it as %20)';
    } else if (!VALUE_CHAR.test(c)) {
      return `"${c}" must be percent-encoded`;
    }
  }
  return undefined;
}

/** Parses a User-Agent; throws CicError ERR_INVALID_ARGUMENT naming the offending piece. */
export function parseUserAgent(ua: string): UserAgentParts {
  const r = validateUserAgent(ua);
  if (!r.ok) throw new CicError('ERR_INVALID_ARGUMENT', `invalid User-Agent: ${r.reason}`);
  return r.parts;
}

/** encodeURIComponent leaves !'()* alone; parentheses would end the comment early. */
function encodeValue(v: string): string {
  return encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Assembles a User-Agent, URL-encoding the extra values, and validates the result. Pieces are
 * checked for separators first: "Linux;x" as the OS would otherwise parse as a valid string
 * that means something else.
 */
export function buildUserAgent(p: UserAgentInput): string {
  const refuse = (reason: string): never => {
    throw new CicError('ERR_INVALID_ARGUMENT', `cannot build a User-Agent: ${reason}`);
  };
  for (const [label, value] of [['manufacturer', p.manufacturer], ['product', p.product], ['firmware version', p.firmware]] as const) {
    if (typeof value !== 'string') refuse(`${label} must be a string`);
    if (/[\/ ()]/.test(value)) refuse(`${label} "${value}" must not contain "/", spaces or parentheses`);
  }
  for (const [label, value] of [['OS info', p.os], ['hardware info', p.hardware]] as const) {
    if (typeof value !== 'string') refuse(`${label} must be a string`);
    if (/[;()]/.test(value)) refuse(`${label} "${value}" must not contain ";" or parentheses`);
  }
  let extra = '';
  for (const [k, v] of Object.entries(p.extra ?? {})) {
    if (!KEY.test(k)) refuse(`key "${k}" may hold only letters, digits and . _ ~ -`);
    if (typeof v !== 'string') refuse(`value of "${k}" must be a string`);
    extra += `;${k}=${encodeValue(v)}`;
  }
  const ua = `${p.manufacturer}/${p.product}/${p.firmware} (${p.os};${p.hardware}${extra})`;
  const r = validateUserAgent(ua);
  if (!r.ok) refuse(r.reason);
  return ua;
}
