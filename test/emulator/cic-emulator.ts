// CIC emulator for tests, the demo and `npm run emulator`: node:http2 behind a TLS front end
// on 127.0.0.1 (generated CA), speaking PROTOCOL.md §2 — downchannel with Clova.Hello and
// pushed directives, multipart events with directive answers (Speak + audio attachment,
// StopCapture on the downchannel while audio streams), /ping, 401/412/429 — plus fault
// injection: withheld PING ACKs, a frozen link, GOAWAY, downchannel resets, dropped sockets,
// expired tokens, scripted statuses.
import { randomUUID } from 'node:crypto';
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { writeMultipart } from '../../src/cic/multipart-writer';
import { FrameRelay, type RelayControls } from './frame-filter';

export interface CicEmulatorOptions {
  cert: string;
  key: string;
  /** Token check (e.g. the auth emulator's isValidAccessToken); default: any non-empty. */
  validateToken?: (token: string) => boolean;
  /** A second downchannel within this many ms of the previous one gets 429. */
  downchannelWindowMs?: number;
  /** Audio bytes after which StopCapture is sent for SpeechRecognizer.Recognize. */
  stopCaptureAfterBytes?: number;
}

export interface ReceivedEvent {
  namespace: string;
  name: string;
  messageId: string;
  dialogRequestId?: string;
  token: string;
  bodyBytes: number;
}

interface Downchannel {
  session: http2.ServerHttp2Session;
  stream: http2.ServerHttp2Stream;
  openedAt: number;
}

const BOUNDARY = 'cic-emulator-0f3a9c';
const SPEAK_AUDIO_BYTES = 8192;

function directivePart(header: Record<string, unknown>, payload: object): string {
  return `\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${JSON.stringify({ directive: { header, payload } })}\r\n--${BOUNDARY}`;
}

function exception(status: number, description: string): string {
  return JSON.stringify({ directive: { header: { namespace: 'System', name: 'Exception', messageId: randomUUID() }, payload: { code: String(status), description } } });
}

export class CicEmulator {
  port = 0;
  readonly events: ReceivedEvent[] = [];
  readonly counts = { connections: 0, downchannels: 0, events: 0, pings: 0, httpPings: 0, s401: 0, s412: 0, s429: 0 };
  /** While set, events are accepted and never answered. */
  holdEvents = false;
  /** While set, GET /ping is accepted and never answered (counted in heldPings). */
  holdHttpPings = false;
  heldPings = 0;
  readonly held: http2.ServerHttp2Stream[] = [];
  private readonly h2 = http2.createServer({ settings: { maxConcurrentStreams: 100 } });
  private readonly front: tls.Server;
  private readonly relays = new Set<FrameRelay>();
  private readonly sockets = new Set<tls.TLSSocket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly controls: RelayControls;
  private current: Downchannel | undefined;
  private tokensExpired = false;
  private goawayOnConnectFlag = false;
  private closeOnAcceptFlag = false;
  private failures = new Map<string, number[]>();
  private responders = new Map<string, (ev: ReceivedEvent, stream: http2.ServerHttp2Stream) => void>();

  constructor(private readonly opts: CicEmulatorOptions) {
    this.controls = { withholdPingAcks: false, frozen: false, onClientPing: () => this.counts.pings++ };
    this.front = tls.createServer({ key: opts.key, cert: opts.cert, ALPNProtocols: ['h2'] }, (socket) => this.accept(socket));
    this.h2.on('session', (s) => {
      this.sessions.add(s);
      s.on('close', () => this.sessions.delete(s));
      s.on('error', () => {});
      if (this.goawayOnConnectFlag) s.goaway(http2.constants.NGHTTP2_NO_ERROR, 0);
    });
    this.h2.on('stream', (stream, headers) => this.route(stream, headers));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.front.listen(0, '127.0.0.1', resolve));
    this.port = (this.front.address() as AddressInfo).port;
    return this;
  }

  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const s of this.sessions) s.destroy();
    await new Promise<void>((resolve) => this.front.close(() => resolve()));
    this.h2.close();
  }

  // ---- controls ----------------------------------------------------------------------

  withholdPingAcks(on: boolean): void {
    this.controls.withholdPingAcks = on;
  }

  freeze(on: boolean): void {
    this.controls.frozen = on;
    if (!on) for (const r of this.relays) r.thaw();
  }

  goaway(code: number = http2.constants.NGHTTP2_NO_ERROR, lastStreamId?: number): void {
    for (const s of this.sessions) s.goaway(code, lastStreamId ?? 0);
  }

  goawayOnConnect(on: boolean): void {
    this.goawayOnConnectFlag = on;
  }

  closeOnAccept(on: boolean): void {
    this.closeOnAcceptFlag = on;
  }

  resetDownchannel(code: number = http2.constants.NGHTTP2_INTERNAL_ERROR): void {
    this.current?.stream.close(code);
  }

  dropSocket(): void {
    for (const s of this.sockets) s.destroy();
  }

  expireTokens(on = true): void {
    this.tokensExpired = on;
  }

  /** The next `count` requests on `path` are answered with `status`. */
  respondStatus(path: string, status: number, count = 1): void {
    this.failures.set(path, [...(this.failures.get(path) ?? []), ...Array(count).fill(status)]);
  }

  /** Custom answer for events of `namespace.name`. */
  respond(namespaceName: string, fn: (ev: ReceivedEvent, stream: http2.ServerHttp2Stream) => void): void {
    this.responders.set(namespaceName, fn);
  }

  pushDirective(namespace: string, name: string, payload: object = {}, dialogRequestId?: string): boolean {
    const dc = this.current;
    if (!dc || dc.stream.closed) return false;
    const header: Record<string, unknown> = { namespace, name, messageId: randomUUID() };
    if (dialogRequestId) header.dialogRequestId = dialogRequestId;
    dc.stream.write(directivePart(header, payload));
    return true;
  }

  // ---- connection handling -------------------------------------------------------------

  private accept(socket: tls.TLSSocket): void {
    this.counts.connections++;
    socket.on('error', () => {});
    if (this.closeOnAcceptFlag) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    const relay = new FrameRelay(socket, this.controls);
    this.relays.add(relay);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.relays.delete(relay);
    });
    this.h2.emit('connection', relay.duplex);
  }

  private refuse(stream: http2.ServerHttp2Stream, status: number, why: string): void {
    if (status === 401) this.counts.s401++;
    if (status === 412) this.counts.s412++;
    if (status === 429) this.counts.s429++;
    stream.respond({ ':status': status, 'content-type': 'application/json' });
    stream.end(exception(status, why));
  }

  private route(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => {});
    const path = String(headers[':path'] ?? '').split('?')[0]!;
    const token = String(headers.authorization ?? '').replace(/^Bearer /, '');
    const scripted = this.failures.get(path)?.shift();
    if (scripted) return this.refuse(stream, scripted, 'scripted');
    if (!headers['user-agent']) return this.refuse(stream, 400, 'missing User-Agent');
    const valid = token !== '' && !this.tokensExpired && (this.opts.validateToken?.(token) ?? true);
    if (!valid) return this.refuse(stream, 401, 'invalid or expired token');
    const session = stream.session as http2.ServerHttp2Session;
    if (path === '/v1/directives' && headers[':method'] === 'GET') return this.downchannel(stream, session);
    if (path === '/v1/events' && headers[':method'] === 'POST') return this.event(stream, session, token, headers);
    if (path === '/ping' && headers[':method'] === 'GET') {
      if (this.holdHttpPings) return void this.heldPings++;
      this.counts.httpPings++;
      stream.respond({ ':status': 204 });
      return void stream.end();
    }
    stream.respond({ ':status': 404 });
    stream.end();
  }

  private downchannel(stream: http2.ServerHttp2Stream, session: http2.ServerHttp2Session): void {
    this.counts.downchannels++;
    const now = Date.now();
    const prev = this.current;
    if (prev && !prev.stream.closed && now - prev.openedAt < (this.opts.downchannelWindowMs ?? 1000)) {
      return this.refuse(stream, 429, 'too many downchannel requests');
    }
    // One downchannel per device: a new one closes the old one.
    if (prev && !prev.stream.closed) prev.stream.end();
    this.current = { session, stream, openedAt: now };
    stream.respond({ ':status': 200, 'content-type': `multipart/related; boundary=${BOUNDARY}` });
    stream.write(`--${BOUNDARY}`);
    stream.write(directivePart({ namespace: 'Clova', name: 'Hello', messageId: randomUUID() }, {}));
    stream.on('close', () => {
      if (this.current?.stream === stream) this.current = undefined;
    });
  }

  private event(stream: http2.ServerHttp2Stream, session: http2.ServerHttp2Session, token: string, headers: http2.IncomingHttpHeaders): void {
    if (!this.current || this.current.session !== session || this.current.stream.closed) {
      stream.on('data', () => {});
      return this.refuse(stream, 412, 'no downchannel on this connection');
    }
    this.counts.events++;
    const chunks: Buffer[] = [];
    let bytes = 0;
    let stopSent = false;
    let ev: ReceivedEvent | undefined;
    const boundary = /boundary="?([^";]+)"?/.exec(String(headers['content-type'] ?? ''))?.[1];
    stream.on('data', (c: Buffer) => {
      chunks.push(c);
      bytes += c.length;
      ev ??= this.metadataOf(Buffer.concat(chunks), token);
      // While audio streams in, StopCapture goes out on the downchannel (not the response).
      if (ev && !stopSent && `${ev.namespace}.${ev.name}` === 'SpeechRecognizer.Recognize' && bytes >= (this.opts.stopCaptureAfterBytes ?? 16_000)) {
        stopSent = true;
        this.pushDirective('SpeechRecognizer', 'StopCapture', {}, ev.dialogRequestId);
      }
    });
    stream.on('end', () => {
      ev ??= this.metadataOf(Buffer.concat(chunks), token);
      if (!ev || !boundary) return this.refuse(stream, 400, 'malformed event body');
      ev.bodyBytes = bytes;
      this.events.push(ev);
      if (this.holdEvents) {
        this.held.push(stream);
        return;
      }
      const custom = this.responders.get(`${ev.namespace}.${ev.name}`);
      if (custom) return custom(ev, stream);
      if (ev.name === 'Recognize') return this.speak(stream, ev);
      stream.respond({ ':status': 204 });
      stream.end();
    });
  }

  private metadataOf(body: Buffer, token: string): ReceivedEvent | undefined {
    const text = body.toString('latin1');
    const start = text.indexOf('{');
    const end = text.indexOf('\r\n--', start);
    if (start < 0 || end < 0) return undefined;
    try {
      const m = JSON.parse(Buffer.from(text.slice(start, end), 'latin1').toString('utf8')) as { event: { header: Record<string, string> } };
      const h = m.event.header;
      return { namespace: h.namespace!, name: h.name!, messageId: h.messageId!, dialogRequestId: h.dialogRequestId, token, bodyBytes: 0 };
    } catch {
      return undefined;
    }
  }

  private speak(stream: http2.ServerHttp2Stream, ev: ReceivedEvent): void {
    const cid = randomUUID();
    const header: Record<string, unknown> = { namespace: 'SpeechSynthesizer', name: 'Speak', messageId: randomUUID() };
    if (ev.dialogRequestId) header.dialogRequestId = ev.dialogRequestId;
    stream.respond({ ':status': 200, 'content-type': `multipart/related; boundary=${BOUNDARY}` });
    stream.end(
      writeMultipart(BOUNDARY, [
        { headers: { 'Content-Type': 'application/json; charset=UTF-8' }, body: JSON.stringify({ directive: { header, payload: { url: `cid:${cid}`, format: 'AUDIO_MPEG', token: 'speak-token' } } }) },
        { headers: { 'Content-Type': 'application/octet-stream', 'Content-ID': `<${cid}>` }, body: Buffer.alloc(SPEAK_AUDIO_BYTES, 0x55) },
      ]),
    );
  }
}

export async function startCicEmulator(opts: CicEmulatorOptions): Promise<CicEmulator> {
  return new CicEmulator(opts).start();
}
