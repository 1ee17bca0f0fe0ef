// The release bundle run as a device runs it (`node dist/cic-runtime.js run`), with its JSON
// lines collected: stdout (directives, event results) and stderr (log lines, state changes).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const root = process.env.CIC_TEST_ROOT ?? join(__dirname, '..', '..', '..', '..');
export const bundlePath = join(root, 'dist', 'cic-runtime.js');

/** Builds dist/cic-runtime.js from the current sources. */
export async function buildBundle(): Promise<void> {
  const { bundle } = await import(join(root, 'scripts', 'build.mjs'));
  await bundle();
}

/** Runs a bundle command to its end: exit code and output. */
export function runBundle(args: string[], env: NodeJS.ProcessEnv, bundle = bundlePath, stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bundle, ...args], { env, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (stdin !== undefined) child.stdin!.end(stdin);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The bundle's environment against an auth and a CIC emulator, with a token file in a fresh
 * directory (`dir`), paired once through the bundle's own `login` (the account token on stdin).
 */
export async function pairedEnv(
  emus: { auth: { url: string; clientId: string; clientSecret: string; addAccount(): string }; cic: { url: string }; caPath: string },
  deviceId: string,
  extra: NodeJS.ProcessEnv = {},
): Promise<{ env: NodeJS.ProcessEnv; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), `cic-${deviceId}-`));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    CIC_AUTH_URL: emus.auth.url,
    CIC_URL: emus.cic.url,
    CIC_CLIENT_ID: emus.auth.clientId,
    CIC_CLIENT_SECRET: emus.auth.clientSecret,
    CIC_DEVICE_ID: deviceId,
    CIC_USER_AGENT: 'Test/Runtime/1.0.0 (Linux;ci)',
    CIC_TOKEN_FILE: join(dir, 'token'),
    CIC_CA_FILE: emus.caPath,
    CIC_LOG_LEVEL: 'info',
    ...extra,
  };
  const login = await runBundle(['login', '--account-token-file', '-'], env, bundlePath, `${emus.auth.addAccount()}\n`);
  if (login.code !== 0) throw new Error(`login failed (${login.code}): ${login.stderr}`);
  return { env, dir };
}

export interface Line {
  at: number;
  json: Record<string, any>;
}

export class RuntimeProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly out: Line[] = [];
  readonly err: Line[] = [];
  readonly exit: Promise<number | null>;

  constructor(env: NodeJS.ProcessEnv, args = ['run']) {
    this.child = spawn(process.execPath, [bundlePath, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const collect = (stream: NodeJS.ReadableStream, into: Line[]) => {
      let buf = '';
      stream.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.trim()) into.push({ at: Date.now(), json: JSON.parse(line) });
        }
      });
    };
    collect(this.child.stdout, this.out);
    collect(this.child.stderr, this.err);
    this.exit = new Promise((r) => this.child.on('close', (code) => r(code)));
  }

  send(event: object): void {
    this.child.stdin.write(JSON.stringify(event) + '\n');
  }

  /** Bounded wait (a failure guard) for a line matching `pred`, after index `from`. */
  async waitFor(lines: 'out' | 'err', pred: (j: Record<string, any>) => boolean, what: string, from = 0, ms = 20_000): Promise<Line> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const hit = this[lines].slice(from).find((l) => pred(l.json));
      if (hit) return hit;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no ${what} within ${ms} ms; stderr tail: ${JSON.stringify(this.err.slice(-5).map((l) => l.json))}`);
  }

  state(to: string, from = 0): Promise<Line> {
    return this.waitFor('err', (j) => j.msg === 'cic state' && j.to === to, `state ${to}`, from);
  }
}
