// A TCP relay between the runtime and a server, for network faults in user space (the kernel
// here has no netem): delay with jitter, dropped chunks, one direction stalled, both
// directions frozen with the sockets kept open, and cuts.
//
// The relay works on TCP byte chunks, below TLS: a dropped chunk corrupts the TLS stream,
// which is exactly what a lossy middlebox does to a connection that cannot retransmit.
import * as net from 'node:net';

export interface FaultSettings {
  /** Added one-way delay per chunk, ms. */
  delayMs: number;
  /** Uniform random extra delay in [0, jitterMs), ms. */
  jitterMs: number;
  /** Probability in [0, 1] that a chunk is silently dropped. */
  dropRate: number;
  /** Stop forwarding client→server bytes (they are held, not lost). */
  stallUp: boolean;
  /** Stop forwarding server→client bytes (they are held, not lost). */
  stallDown: boolean;
}

export interface FaultProxy {
  port: number;
  settings: FaultSettings;
  /** Connections accepted so far. */
  accepted: number;
  /** Live relayed connections. */
  readonly live: number;
  /** Holds all bytes both ways; sockets stay open (a frozen link). */
  freeze(): void;
  /** Releases held bytes and resumes forwarding. */
  thaw(): void;
  /** Destroys every relayed connection (a cut). */
  cut(): void;
  /** Refuse new connections: accept and close at once. */
  refuse(on: boolean): void;
  /** Sets the one-direction stalls; bytes held by an ended stall are released in order. */
  stall(up: boolean, down: boolean): void;
  close(): Promise<void>;
}

interface Pipe {
  client: net.Socket;
  server: net.Socket;
}

export async function startFaultProxy(target: { host: string; port: number }, seed = 1, initial: Partial<FaultSettings> = {}): Promise<FaultProxy> {
  let x = seed >>> 0 || 1;
  const random = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  const settings: FaultSettings = { delayMs: 0, jitterMs: 0, dropRate: 0, stallUp: false, stallDown: false, ...initial };
  const pipes = new Set<Pipe>();
  let frozen = false;
  let refusing = false;
  const timers = new Set<NodeJS.Timeout>();

  function forward(from: net.Socket, to: net.Socket, up: boolean): void {
    const held: Buffer[] = [];
    let lastDue = 0;
    const release = () => {
      while (held.length && !(frozen || (up ? settings.stallUp : settings.stallDown))) {
        const chunk = held.shift()!;
        if (!to.destroyed) to.write(chunk);
      }
    };
    (from as net.Socket & { release?: () => void }).release = release;
    from.on('data', (chunk: Buffer) => {
      if (settings.dropRate > 0 && random() < settings.dropRate) return;
      const send = () => {
        if (frozen || (up ? settings.stallUp : settings.stallDown) || held.length) {
          held.push(chunk);
          return;
        }
        if (!to.destroyed) to.write(chunk);
      };
      const delay = settings.delayMs + (settings.jitterMs > 0 ? random() * settings.jitterMs : 0);
      // Keep order: a chunk never overtakes the one before it, whatever the jitter drew —
      // also when the delay was just lowered to 0 while earlier chunks still wait.
      if (delay <= 0 && lastDue <= Date.now()) return send();
      const due = Math.max(Date.now() + delay, lastDue);
      lastDue = due;
      const t = setTimeout(() => {
        timers.delete(t);
        send();
      }, due - Date.now());
      timers.add(t);
    });
    from.on('end', () => to.end());
  }

  const server = net.createServer((client) => {
    proxy.accepted++;
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target);
    const pipe = { client, server: upstream };
    pipes.add(pipe);
    const done = () => {
      client.destroy();
      upstream.destroy();
      pipes.delete(pipe);
    };
    client.on('error', done);
    upstream.on('error', done);
    client.on('close', done);
    upstream.on('close', done);
    forward(client, upstream, true);
    forward(upstream, client, false);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  const releaseAll = () => {
    for (const p of pipes) {
      (p.client as net.Socket & { release?: () => void }).release?.();
      (p.server as net.Socket & { release?: () => void }).release?.();
    }
  };

  const proxy: FaultProxy = {
    port: (server.address() as net.AddressInfo).port,
    settings,
    accepted: 0,
    get live() {
      return pipes.size;
    },
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      releaseAll();
    },
    cut: () => {
      for (const p of [...pipes]) {
        p.client.destroy();
        p.server.destroy();
      }
    },
    refuse: (on) => {
      refusing = on;
    },
    stall: (up, down) => {
      settings.stallUp = up;
      settings.stallDown = down;
      releaseAll();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        proxy.cut();
        server.close(() => resolve());
      }),
  };
  return proxy;
}
