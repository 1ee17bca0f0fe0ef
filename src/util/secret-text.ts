// A secret handed over as text (a file, standard input) instead of a command-line argument:
// the one trailing newline that `echo` and editors add is dropped, anything else that is not
// a single visible word is refused, and a regular file others may read is refused. Problems
// describe the text, never quote it.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Longest secret accepted (tokens and codes are well under 1 KiB). */
export const MAX_SECRET_BYTES = 8192;

export type SecretCheck = { value: string } | { problem: string };

/** Validates `text` as read. */
export function checkSecretText(text: string): SecretCheck {
  let v = text;
  if (v.endsWith('\r\n')) v = v.slice(0, -2);
  else if (v.endsWith('\n')) v = v.slice(0, -1);
  if (v === '') return { problem: 'is empty' };
  if (Buffer.byteLength(v) > MAX_SECRET_BYTES) return { problem: `is longer than ${MAX_SECRET_BYTES} bytes` };
  if (/[\r\n]/.test(v)) return { problem: 'holds more than one line' };
  if (/\s/.test(v)) return { problem: 'holds whitespace (a copy-paste slip?)' };
  if (/[^\x21-\x7e]/.test(v)) return { problem: 'holds control or non-ASCII characters' };
  return { value: v };
}

/** A reason to refuse a regular file holding a secret because others may read it, or undefined. */
export function secretFileModeProblem(mode: number): string | undefined {
  if ((mode & 0o077) === 0) return undefined;
  return `is accessible to group/other (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`;
}

/** Reads a secret file synchronously (configuration loading); the problem names the path only. */
export function readSecretFileSync(path: string): SecretCheck {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    return { problem: `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const st = fstatSync(fd);
    if (st.isFile()) {
      const mode = secretFileModeProblem(st.mode);
      if (mode) return { problem: `${path} ${mode}` };
    }
    // Reads a little past the limit so that "too long" is told apart from "at the limit".
    const buf = Buffer.alloc(MAX_SECRET_BYTES + 3);
    let got = 0;
    let n: number;
    while (got < buf.length && (n = readSync(fd, buf, got, buf.length - got, null)) > 0) got += n;
    const r = checkSecretText(buf.subarray(0, got).toString('utf8'));
    return 'problem' in r ? { problem: `${path} ${r.problem}` } : r;
  } catch (e) {
    return { problem: `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  } finally {
    closeSync(fd);
  }
}
