// Content-Type parsing for multipart bodies (RFC 2045 §5.1 parameters, RFC 2046 §5.1.1
// boundaries). CIC's published header tables disagree with the wire (multipart/form-data vs
// multipart/related), so any multipart subtype is accepted; what matters is the boundary.
import { CicError } from '../errors';

export interface MultipartContentType {
  type: 'multipart';
  /** Lower-cased subtype: related, form-data, mixed, … */
  subtype: string;
  boundary: string;
  /** Every parameter, names lower-cased, values unquoted (first occurrence wins). */
  params: Record<string, string>;
}

/** RFC 2046: 1–70 characters. */
export const MAX_BOUNDARY_LENGTH = 70;

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Why `boundary` cannot be used as a multipart boundary, or undefined when it can.
 * RFC 2046 allows 1–70 characters from a small set, not ending in a space. We are lenient on
 * the set (any printable ASCII) but strict on what the parser depends on: no CR/LF, no
 * control or non-ASCII characters, bounded length.
 */
export function checkBoundary(boundary: unknown): string | undefined {
  if (typeof boundary !== 'string') return 'boundary is not a string';
  if (boundary.length === 0) return 'boundary is empty';
  if (boundary.length > MAX_BOUNDARY_LENGTH) return `boundary is longer than ${MAX_BOUNDARY_LENGTH} characters`;
  if (/[\r\n]/.test(boundary)) return 'boundary contains CR or LF';
  if (/[^\x20-\x7e]/.test(boundary)) return 'boundary contains a control or non-ASCII character';
  if (boundary.endsWith(' ')) return 'boundary ends with a space';
  return undefined;
}

/**
 * Parameters of a header value after its first `;` (or from `from`): `name=value` pairs
 * separated by `;`, names case-insensitive (returned lower-cased), values quoted (with
 * backslash escapes) or bare, whitespace allowed around `=` and `;`, empty segments and a
 * trailing `;` tolerated. Returns undefined when a quoted string is not terminated.
 */
export function parseHeaderParams(input: string, from = 0): Array<[string, string]> | undefined {
  const out: Array<[string, string]> = [];
  const len = input.length;
  let i = from;
  while (i < len) {
    const c = input.charCodeAt(i);
    if (c === 0x3b /* ; */ || c === 0x20 || c === 0x09) {
      i++;
      continue;
    }
    let j = i;
    while (j < len && input[j] !== '=' && input[j] !== ';') j++;
    const name = input.slice(i, j).trim().toLowerCase();
    if (j >= len || input[j] === ';') {
      if (name) out.push([name, '']); // a parameter without a value: kept, never a boundary
      i = j;
      continue;
    }
    j++; // '='
    while (j < len && (input[j] === ' ' || input[j] === '\t')) j++;
    let value = '';
    if (input[j] === '"') {
      j++;
      let closed = false;
      while (j < len) {
        const ch = input[j]!;
        if (ch === '\\' && j + 1 < len) {
          value += input[j + 1];
          j += 2;
          continue;
        }
        j++;
        if (ch === '"') {
          closed = true;
          break;
        }
        value += ch;
      }
      if (!closed) return undefined;
      while (j < len && input[j] !== ';') j++; // junk after the closing quote is ignored
    } else {
      let k = j;
      while (k < len && input[k] !== ';') k++;
      value = input.slice(j, k).trim();
      j = k;
    }
    if (name) out.push([name, value]);
    i = j;
  }
  return out;
}

function fail(reason: string, value: unknown): never {
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 120 ? `${value.slice(0, 120)}…` : value) : String(value);
  throw new CicError('CIC_MULTIPART', `bad multipart content type ${shown}: ${reason}`, { details: { reason } });
}

/**
 * Parses a `Content-Type` header that must be `multipart/*` with a usable boundary.
 * Throws CicError CIC_MULTIPART otherwise.
 */
export function parseMultipartContentType(value: string | undefined): MultipartContentType {
  if (typeof value !== 'string' || value.trim() === '') fail('missing', value);
  const semi = value.indexOf(';');
  const mediaType = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const slash = mediaType.indexOf('/');
  const type = slash < 0 ? mediaType : mediaType.slice(0, slash).trim();
  const subtype = slash < 0 ? '' : mediaType.slice(slash + 1).trim();
  if (type !== 'multipart') fail('not a multipart type', value);
  if (!TOKEN.test(subtype)) fail('bad subtype', value);
  const pairs = semi < 0 ? [] : parseHeaderParams(value, semi + 1);
  if (!pairs) fail('unterminated quoted string', value);
  const params: Record<string, string> = {};
  let boundary: string | undefined;
  for (const [name, v] of pairs) {
    if (name === 'boundary') {
      // Two different boundaries make the body ambiguous: refuse rather than guess.
      if (boundary !== undefined && boundary !== v) fail('two different boundary parameters', value);
      boundary = v;
    }
    if (!Object.hasOwn(params, name) && name !== '__proto__') params[name] = v;
  }
  if (boundary === undefined) fail('no boundary parameter', value);
  const why = checkBoundary(boundary);
  if (why) fail(why, value);
  return { type: 'multipart', subtype, boundary, params };
}
