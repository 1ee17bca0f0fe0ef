// Liveness check for the CIC connection: one probe every `intervalMs`, each with its own
// deadline. A missed deadline declares the connection dead (the client replaces it at once).
//
// Idle cost matters on a device: exactly one timer is armed at any moment (next probe, or the
// probe's deadline inside the probe itself), so nothing wakes the process between pings.
import type { Clock, TimerHandle } from '../util/clock';
import { CicError } from '../errors';

export const PING_INTERVAL_MS = 60_000; // CIC: "send an HTTP/2 PING frame every minute"
export const PING_TIMEOUT_MS = 10_000; // no ACK within this → open a new connection

export interface KeepaliveOptions {
  clock: Clock;
  intervalMs?: number;
  timeoutMs?: number;
  /** Sends one probe; resolves with the RTT in ms, rejects when it failed or timed out. */
  probe: (timeoutMs: number) => Promise<number>;
  onRtt?: (rttMs: number) => void;
  onDead: (err: CicError) => void;
}

export class Keepalive {
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;
  private readonly opts: KeepaliveOptions;
  private timer: TimerHandle | undefined;
  private guard: TimerHandle | undefined;
  private running = false;
  private generation = 0;

  constructor(opts: KeepaliveOptions) {
    this.opts = opts;
    this.clock = opts.clock;
    this.intervalMs = opts.intervalMs ?? PING_INTERVAL_MS;
    this.timeoutMs = opts.timeoutMs ?? PING_TIMEOUT_MS;
    if (!(this.timeoutMs > 0 && this.intervalMs > 0)) throw new CicError('ERR_INVALID_ARGUMENT', 'keepalive interval and timeout must be positive');
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.arm();
  }

  stop(): void {
    this.running = false;
    this.generation++; // a probe still in flight must not report after stop()
    this.clock.clearTimeout(this.timer);
    this.clock.clearTimeout(this.guard);
    this.timer = this.guard = undefined;
  }

  get active(): boolean {
    return this.running;
  }

  private arm(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => this.fire(), this.intervalMs);
  }

  private fire(): void {
    this.timer = undefined;
    if (!this.running) return;
    const gen = this.generation;
    // The probe enforces its own deadline (Connection.ping or a request timeout); this
    // guard is a second deadline in case the probe never settles at all.
    let settled = false;
    const guard = (this.guard = this.clock.setTimeout(() => {
      if (settled || gen !== this.generation) return;
      settled = true;
      this.dead(new CicError('H2_PING_TIMEOUT', `no answer to the keepalive probe within ${this.timeoutMs} ms`));
    }, this.timeoutMs + 1));
    this.opts.probe(this.timeoutMs).then(
      (rtt) => {
        if (settled || gen !== this.generation) return;
        settled = true;
        this.clock.clearTimeout(guard);
        this.opts.onRtt?.(rtt);
        if (this.running) this.arm();
      },
      (err: unknown) => {
        if (settled || gen !== this.generation) return;
        settled = true;
        this.clock.clearTimeout(guard);
        this.dead(err instanceof CicError ? err : new CicError('H2_PING_TIMEOUT', String(err), { cause: err }));
      },
    );
  }

  private dead(err: CicError): void {
    this.stop();
    this.opts.onDead(err);
  }
}
