// A real link for link-cut tests: a network namespace joined to the root namespace by a veth
// pair, with link-local IPv4 addresses (169.254.N.1 here, 169.254.N.2 in the namespace) or
// IPv6 unique-local ones (fd63:6963:0:N::1 and ::2); N is derived from the pid, so concurrent
// runs do not collide. Created and removed by the test;
// names carry the pid (cicf-<pid>, cf<pid>h / cf<pid>n), and leftovers of runs that were
// killed (their pid gone) are removed on the next start.
//
// Cutting the link takes the namespace end down: the root end loses carrier and its packets
// are dropped silently, as with a pulled cable (no error reaches the runtime's socket). An
// `unreachable` route for the pair's prefix with a high metric makes sure that, whatever
// happens to the connected route, nothing addressed to the pair ever leaves through another
// interface.
//
// IPv6 hazards: Linux flushes the IPv6 addresses of an interface taken down unless its
// keep_addr_on_down is set (the namespace end gets it), and a fresh address is unusable while
// duplicate address detection runs (both ends are added `nodad`).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

export type IpFamily = 4 | 6;

export interface NetnsLink {
  family: IpFamily;
  ns: string;
  hostDev: string;
  nsDev: string;
  hostIp: string;
  nsIp: string;
  /** The pair's prefix (CIDR). */
  net: string;
  /** `https://<nsIp>:<port>` with IPv6 brackets where needed. */
  urlOf(port: number): string;
  /** Takes the namespace end of the pair down (the cable is pulled). */
  down(): void;
  up(): void;
  /** Spawns `argv` inside the namespace. */
  spawnIn(argv: string[], env?: NodeJS.ProcessEnv): ChildProcess;
  cleanup(): void;
}

const PREFIX = 'cicf-';

function ip(args: string[]): string {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

function tryIp(args: string[]): void {
  try {
    ip(args);
  } catch {
    // already gone
  }
}

function octetFor(pid: number): number {
  const n = 1 + (pid % 253); // 1…253
  return n === 169 ? 170 : n; // keep clear of 169.254.169.254
}

function namesFor(pid: number, family: IpFamily = 4) {
  const n = octetFor(pid);
  const names = { ns: `${PREFIX}${pid}`, hostDev: `cf${pid}h`, nsDev: `cf${pid}n` };
  return family === 4
    ? { ...names, net: `169.254.${n}.0/30`, prefixLen: 30, hostIp: `169.254.${n}.1`, nsIp: `169.254.${n}.2` }
    : { ...names, net: `fd63:6963:0:${n.toString(16)}::/64`, prefixLen: 64, hostIp: `fd63:6963:0:${n.toString(16)}::1`, nsIp: `fd63:6963:0:${n.toString(16)}::2` };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces, links and routes of earlier runs whose process is gone. */
function removeStale(): void {
  let list = '';
  try {
    list = ip(['netns', 'list']);
  } catch {
    return;
  }
  for (const m of list.matchAll(new RegExp(`^${PREFIX}(probe-)?(\\d+)`, 'gm'))) {
    const pid = Number(m[2]);
    if (pid === process.pid || alive(pid)) continue;
    if (m[1]) {
      tryIp(['link', 'del', `cfp${pid}a`]);
      tryIp(['netns', 'del', `${PREFIX}probe-${pid}`]);
      continue;
    }
    for (const family of [4, 6] as const) {
      const n = namesFor(pid, family);
      tryIp(['link', 'del', n.hostDev]);
      tryIp(['netns', 'del', n.ns]);
      tryIp([`-${family}`, 'route', 'del', 'unreachable', n.net, 'metric', '4000']);
    }
  }
}

/**
 * Why this machine cannot run the namespace case, or undefined when it can. Probes every
 * step the case needs — a namespace, running a process in it, a veth pair — and undoes them
 * (EPERM in unprivileged containers, no veth driver, no `ip` binary…).
 */
export function netnsUnavailable(family: IpFamily = 4): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  const probe = `${PREFIX}probe-${process.pid}`;
  const dev = `cfp${process.pid}`;
  const steps: Array<[string, string[]]> = [
    ['ip netns add', ['netns', 'add', probe]],
    ['ip netns exec', ['netns', 'exec', probe, 'true']],
    ['ip link add type veth', ['link', 'add', `${dev}a`, 'type', 'veth', 'peer', 'name', `${dev}b`]],
  ];
  // IPv6 can be switched off machine-wide (ipv6.disable=1, disable_ipv6): probe an address.
  if (family === 6) steps.push(['ip -6 addr add', ['-6', 'addr', 'add', 'fd63:6963:0:ffff::1/64', 'dev', `${dev}a`, 'nodad']]);
  try {
    for (const [what, args] of steps) {
      try {
        ip(args);
      } catch (e) {
        const err = e as { stderr?: string; code?: string; message: string };
        return `\`${what}\` refused: ${String(err.stderr || err.code || err.message).trim()}`;
      }
    }
    return undefined;
  } finally {
    tryIp(['link', 'del', `${dev}a`]);
    tryIp(['netns', 'del', probe]);
  }
}

export function createNetnsLink(family: IpFamily = 4): NetnsLink {
  removeStale();
  const n = namesFor(process.pid, family);
  const f = `-${family}`;
  const dad = family === 6 ? ['nodad'] : [];
  const children = new Set<ChildProcess>();
  let cleaned = false;
  const cleanup = () => {
    if (cleaned) return;
    cleaned = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    tryIp(['link', 'del', n.hostDev]);
    tryIp(['netns', 'del', n.ns]);
    tryIp([f, 'route', 'del', 'unreachable', n.net, 'metric', '4000']);
    process.off('exit', cleanup);
  };
  // Also on a failed assertion or an uncaught error that ends the process.
  process.on('exit', cleanup);
  try {
    ip(['netns', 'add', n.ns]);
    ip(['link', 'add', n.hostDev, 'type', 'veth', 'peer', 'name', n.nsDev]);
    ip(['link', 'set', n.nsDev, 'netns', n.ns]);
    if (family === 6) {
      // /proc/sys/net belongs to the namespace of the process that opens it.
      execFileSync('ip', ['netns', 'exec', n.ns, 'sh', '-c', `echo 1 > /proc/sys/net/ipv6/conf/${n.nsDev}/keep_addr_on_down`], { stdio: ['ignore', 'ignore', 'pipe'] });
    }
    ip([f, 'addr', 'add', `${n.hostIp}/${n.prefixLen}`, 'dev', n.hostDev, ...dad]);
    ip([f, '-n', n.ns, 'addr', 'add', `${n.nsIp}/${n.prefixLen}`, 'dev', n.nsDev, ...dad]);
    ip(['-n', n.ns, 'link', 'set', 'lo', 'up']);
    ip(['-n', n.ns, 'link', 'set', n.nsDev, 'up']);
    ip(['link', 'set', n.hostDev, 'up']);
    ip([f, 'route', 'add', 'unreachable', n.net, 'metric', '4000']);
  } catch (e) {
    cleanup();
    throw e;
  }
  return {
    family,
    ns: n.ns,
    hostDev: n.hostDev,
    nsDev: n.nsDev,
    hostIp: n.hostIp,
    nsIp: n.nsIp,
    net: n.net,
    urlOf: (port) => `https://${family === 6 ? `[${n.nsIp}]` : n.nsIp}:${port}`,
    down: () => void ip(['-n', n.ns, 'link', 'set', n.nsDev, 'down']),
    up: () => void ip(['-n', n.ns, 'link', 'set', n.nsDev, 'up']),
    spawnIn: (argv, env = process.env) => {
      const child = spawn('ip', ['netns', 'exec', n.ns, ...argv], { env, stdio: ['pipe', 'pipe', 'inherit'] });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    cleanup,
  };
}
