// User-Agent grammar of CIC (PROTOCOL.md §3), validated when the configuration loads:
//   Manufacturer/Product/FirmwareSemVer (OS_Info;HW_Info[;key=urlencoded_value…])
// Example: `Vendor/Client/0.8.2+build (Linux 7.0;Raspberry_pi;domain=Sample%40Clova;type=Test%20Type)`
import { CicError } from '../errors';

export interface UserAgentParts {
  manufacturer: string;
  product: string;
  firmware: string;
  os: string;
  hardware: string;
  extra: Record<string, string>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/; // manufacturer, product: no '/', no spaces
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;
const INFO = /^[\x21-\x27\x2a-\x3a\x3c-\x7e]([\x20-\x27\x2a-\x3a\x3c-\x7e]*[\x21-\x27\x2a-\x3a\x3c-\x7e])?$/; // printable, no ( ) ;
const KEY = /^[A-Za-z0-9._~-]+$/;
const URLENCODED = /^([A-Za-z0-9._~!$&'*+,:@-]|%[0-9A-Fa-f]{2})*$/;

export type UserAgentCheck = { ok: true; parts: UserAgentParts } | { ok: false; reason: string };

export function validateUserAgent(ua: unknown): UserAgentCheck {
  if (typeof ua !== 'string' || ua.length === 0) return { ok: false, reason: 'must be a non-empty string' };
  if (ua.length > 512) return { ok: false, reason: 'is longer than 512 characters' };
  if (!/^[\x20-\x7e]+$/.test(ua)) return { ok: false, reason: 'must be printable ASCII (no control or non-ASCII characters)' };
  const m = /^([^ ]+) \((.*)\)$/.exec(ua);
  if (!m) return { ok: false, reason: 'must look like "Manufacturer/Product/1.2.3 (OS;Hardware[;key=value…])"' };
  const product = m[1]!.split('/');
  if (product.length !== 3) return { ok: false, reason: `"${m[1]}" must be Manufacturer/Product/FirmwareVersion` };
  const [manufacturer, name, firmware] = product as [string, string, string];
  if (!NAME.test(manufacturer)) return { ok: false, reason: `manufacturer "${manufacturer}" has characters outside [A-Za-z0-9._+-]` };
  if (!NAME.test(name)) return { ok: false, reason: `product "${name}" has characters outside [A-Za-z0-9._+-]` };
  if (!SEMVER.test(firmware)) return { ok: false, reason: `firmware version "${firmware}" is not SemVer N.N.N[-pre][+build]` };
  if (/[()]/.test(m[2]!)) return { ok: false, reason: 'parentheses inside the comment are not allowed' };
  const fields = m[2]!.split(';');
  if (fields.length < 2) return { ok: false, reason: 'the comment needs OS_Info;HW_Info' };
  const [os, hardware, ...rest] = fields as [string, string, ...string[]];
  if (!INFO.test(os)) return { ok: false, reason: `OS info "${os}" is empty or has invalid characters` };
  if (!INFO.test(hardware)) return { ok: false, reason: `hardware info "${hardware}" is empty or has invalid characters` };
  const extra: Record<string, string> = {};
  for (const f of rest) {
    const eq = f.indexOf('=');
    if (eq <= 0) return { ok: false, reason: `"${f}" must be key=urlencoded_value` };
    const key = f.slice(0, eq);
    const value = f.slice(eq + 1);
    if (!KEY.test(key)) return { ok: false, reason: `key "${key}" has invalid characters` };
    if (!URLENCODED.test(value)) return { ok: false, reason: `value of "${key}" is not URL-encoded` };
    extra[key] = value;
  }
  return { ok: true, parts: { manufacturer, product: name, firmware, os, hardware, extra } };
}

export function parseUserAgent(ua: string): UserAgentParts {
  const r = validateUserAgent(ua);
  if (!r.ok) throw new CicError('ERR_INVALID_ARGUMENT', `User-Agent ${r.reason}`);
  return r.parts;
}

export function buildUserAgent(p: { manufacturer: string; product: string; firmware: string; os: string; hardware: string; extra?: Record<string, string> }): string {
  const extra = Object.entries(p.extra ?? {}).map(([k, v]) => `;${k}=${encodeURIComponent(v)}`).join('');
  const ua = `${p.manufacturer}/${p.product}/${p.firmware} (${p.os};${p.hardware}${extra})`;
  parseUserAgent(ua);
  return ua;
}
