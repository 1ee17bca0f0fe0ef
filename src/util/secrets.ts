// Process-wide registry of secret values (tokens, codes, client secrets).
//
// Hazard: a secret can reach text by many paths (an error message quoting a server reply, a
// URL with a query string, a stack trace). Redaction therefore happens where text leaves the
// process — the logger and CicError — by value, not at each call site.

const MIN_SECRET_LENGTH = 6; // shorter values would blank out ordinary words
const secrets = new Set<string>();
let pattern: RegExp | null = null;

export const REDACTED = '[redacted]';

/** Registers a value that must never appear in logs or error messages. */
export function registerSecret(value: string | undefined | null): void {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH || secrets.has(value)) return;
  secrets.add(value);
  // URL-encoded forms travel in query strings and form bodies.
  const encoded = encodeURIComponent(value);
  if (encoded !== value) secrets.add(encoded);
  pattern = null;
}

/** Replaces every registered secret inside `text`. */
export function redactText(text: string): string {
  if (secrets.size === 0 || text.length < MIN_SECRET_LENGTH) return text;
  if (pattern === null) {
    const alternatives = [...secrets]
      .sort((a, b) => b.length - a.length)
      .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    pattern = new RegExp(alternatives.join('|'), 'g');
  }
  return text.replace(pattern, REDACTED);
}

/** Field names whose values are secret whatever they contain. */
const SECRET_KEY = /^(access_?token|refresh_?token|id_?token|token|code|client_?secret|secret|password|authorization|account_?token|device_?key|cookie)$/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Test hook: forget every registered secret. */
export function clearSecrets(): void {
  secrets.clear();
  pattern = null;
}
