// The device service: the local endpoint other programs on the device use (wake word, mic,
// player, setup bridge, LED daemon) — a Unix socket speaking Wyoming framing, one session per
// client, a hub that fans out directives, attachments and state and routes each event's
// answers to its sender. It talks to the rest of the runtime only through a RuntimePort.
//
// A client beyond the limit gets `error` SOCKET_TOO_MANY_CLIENTS and is closed; refusals are
// logged at most once a second (with a count), so a connection flood cannot flood the log.
import type { Server, Socket } from 'node:net';
import { CicError } from '../errors';
import { silentLogger, type Logger } from '../log';
import { systemClock, type Clock } from '../util/clock';
import { encodeFrame, type Frame } from './framing';
import { HANDLERS, type RuntimeInfo } from './handlers';
import { Hub } from './hub';
import { DEFAULT_LIMITS, REFUSAL_LOG_INTERVAL_MS, type ServiceLimits } from './limits';
import { openUnixSocket, type UnixListener } from './listener';
import type { RuntimePort } from './port';
import { Session, type SessionHost } from './session';

export interface DeviceServiceOptions {
  runtime: RuntimePort;
  info: RuntimeInfo;
  clock?: Clock;
  log?: Logger;
  limits?: Partial<ServiceLimits>;
}

export interface DeviceServiceStats {
  clients: number;
  /** Connections accepted since start (refused ones not counted). */
  accepted: number;
  refusedConnections: number;
  sessions: Array<{ id: number; subscribed: boolean; queuedBytes: number; congested: boolean; readingPaused: boolean; eventsInFlight: number }>;
}

export class DeviceService {
  private readonly opts: DeviceServiceOptions;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly limits: ServiceLimits;
  private readonly hub: Hub;
  private readonly sessions = new Set<Session>();
  private readonly host: SessionHost;
  private listener: UnixListener | undefined;
  private server: Server | undefined;
  private nextId = 1;
  private refused = 0;
  private refusedUnlogged = 0;
  private lastRefusalLog = -Infinity;
  private closing = false;

  constructor(opts: DeviceServiceOptions) {
    this.opts = opts;
    this.clock = opts.clock ?? systemClock;
    this.log = (opts.log ?? silentLogger).child({ component: 'device-socket' });
    this.limits = { ...DEFAULT_LIMITS, ...opts.limits };
    this.hub = new Hub(opts.runtime, this.log, this.limits.maxOutPayloadBytes);
    this.host = {
      clock: this.clock,
      log: this.log,
      limits: this.limits,
      dispatch: (frame, session) => this.dispatch(frame, session),
      closed: (session) => {
        this.sessions.delete(session);
        this.hub.remove(session);
      },
    };
  }

  /** Creates the socket at `path` (see listener.ts) and starts serving. */
  async listen(path: string): Promise<void> {
    this.listener = await openUnixSocket(path, { log: this.log });
    this.attach(this.listener.server);
  }

  /** Serves connections of an existing server (created with allowHalfOpen: true). */
  attach(server: Server): void {
    this.server = server;
    this.hub.start();
    server.on('connection', (socket: Socket) => this.accept(socket));
  }

  stats(): DeviceServiceStats {
    return {
      clients: this.sessions.size,
      accepted: this.nextId - 1,
      refusedConnections: this.refused,
      sessions: [...this.sessions].map((s) => ({
        id: s.id,
        subscribed: s.subscribed,
        queuedBytes: s.queuedBytes,
        congested: s.congested,
        readingPaused: s.readingPaused,
        eventsInFlight: s.eventsInFlight,
      })),
    };
  }

  /** Stops accepting, ends every session (live uploads are cancelled), removes the socket file. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.hub.stop();
    for (const s of this.sessions) s.close();
    if (this.listener) await this.listener.close();
    else this.server?.close();
  }

  private accept(socket: Socket): void {
    socket.on('error', () => {}); // a client that vanishes before we write must not crash the runtime
    if (this.closing) {
      socket.destroy();
      return;
    }
    if (this.sessions.size >= this.limits.maxClients) {
      this.refuse(socket);
      return;
    }
    const s = new Session(this.nextId++, socket, this.host);
    this.sessions.add(s);
    this.hub.add(s);
    s.log.debug('socket client connected', { clients: this.sessions.size });
  }

  private refuse(socket: Socket): void {
    this.refused++;
    this.refusedUnlogged++;
    const now = this.clock.now();
    if (now - this.lastRefusalLog >= REFUSAL_LOG_INTERVAL_MS) {
      this.log.warn('socket client refused', { code: 'SOCKET_TOO_MANY_CLIENTS', clients: this.sessions.size, refused: this.refusedUnlogged });
      this.lastRefusalLog = now;
      this.refusedUnlogged = 0;
    }
    const err = new CicError('SOCKET_TOO_MANY_CLIENTS', `already ${this.limits.maxClients} clients`);
    for (const b of encodeFrame('error', { code: err.code, text: err.message })) socket.write(b);
    socket.end();
    const timer = this.clock.setTimeout(() => socket.destroy(), this.limits.closeGraceMs);
    socket.once('close', () => this.clock.clearTimeout(timer));
    socket.resume(); // whatever it sends is discarded
  }

  private dispatch(frame: Frame, session: Session): void {
    const handler = HANDLERS.get(frame.type);
    if (!handler) throw new CicError('SOCKET_UNKNOWN_TYPE', `unknown message type "${frame.type}"`);
    handler(frame, { session, runtime: this.opts.runtime, hub: this.hub, info: this.opts.info, limits: this.limits });
  }
}
