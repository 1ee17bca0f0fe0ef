// Field checks for message data. Messages name the field, never quote its value (a login
// message carries a secret).
import { CicError } from '../../errors';

export function bad(type: string, text: string): CicError {
  return new CicError('SOCKET_BAD_MESSAGE', `${type}: ${text}`);
}

export function onlyFields(type: string, data: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(data)) {
    if (!known.includes(k)) throw bad(type, `unknown field "${k.length <= 64 ? k : `${k.slice(0, 64)}…`}"`);
  }
}

export function text(type: string, data: Record<string, unknown>, key: string, required: true, max?: number): string;
export function text(type: string, data: Record<string, unknown>, key: string, required: false, max?: number): string | undefined;
export function text(type: string, data: Record<string, unknown>, key: string, required: boolean, max = 1024): string | undefined {
  const v = data[key];
  if ((v === undefined || v === null) && !required) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw bad(type, `"${key}" must be a non-empty string`);
  if (v.length > max) throw bad(type, `"${key}" is longer than ${max} characters`);
  return v;
}

export function positiveInt(type: string, data: Record<string, unknown>, key: string): number | undefined {
  const v = data[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw bad(type, `"${key}" must be a positive integer`);
  return v;
}
