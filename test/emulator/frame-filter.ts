// The CIC emulator terminates TLS itself and hands node:http2 a JavaScript Duplex through
// this relay, because node:http2 always answers PINGs and cannot be told to stop talking.
// The relay parses client→server frames so it can drop PINGs (withheld ACKs, counted), and
// can hold every byte in both directions (a frozen link: sockets open, nothing moves).
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';

const PREFACE_BYTES = 24;
const FRAME_PING = 6;
const FLAG_ACK = 1;

export interface RelayControls {
  withholdPingAcks: boolean;
  frozen: boolean;
  onClientPing(): void;
}

export class FrameRelay {
  readonly duplex: Duplex;
  private buf: Buffer = Buffer.alloc(0);
  private prefaceLeft = PREFACE_BYTES;
  private heldUp: Buffer[] = [];
  private heldDown: Buffer[] = [];

  constructor(private readonly socket: TLSSocket, private readonly controls: RelayControls) {
    this.duplex = new Duplex({
      read() {},
      write: (chunk: Buffer, _enc, cb) => {
        if (this.controls.frozen) this.heldDown.push(chunk);
        else if (!socket.destroyed) socket.write(chunk);
        cb();
      },
      final: (cb) => {
        socket.end();
        cb();
      },
    });
    socket.on('data', (c: Buffer) => this.fromClient(c));
    socket.on('end', () => this.duplex.push(null));
    socket.on('close', () => this.duplex.destroy());
    socket.on('error', () => this.duplex.destroy());
    this.duplex.on('error', () => socket.destroy());
  }

  /** Releases everything held while frozen, in order. */
  thaw(): void {
    for (const c of this.heldDown.splice(0)) if (!this.socket.destroyed) this.socket.write(c);
    for (const c of this.heldUp.splice(0)) this.parse(c);
  }

  private fromClient(chunk: Buffer): void {
    if (this.controls.frozen) {
      this.heldUp.push(chunk);
      return;
    }
    this.parse(chunk);
  }

  private parse(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (this.prefaceLeft > 0) {
      const n = Math.min(this.prefaceLeft, this.buf.length);
      this.duplex.push(this.buf.subarray(0, n));
      this.buf = this.buf.subarray(n);
      this.prefaceLeft -= n;
    }
    while (this.buf.length >= 9) {
      const len = this.buf.readUIntBE(0, 3);
      if (this.buf.length < 9 + len) break;
      const frame = this.buf.subarray(0, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      if (frame[3] === FRAME_PING && !(frame[4]! & FLAG_ACK)) {
        this.controls.onClientPing();
        if (this.controls.withholdPingAcks) continue;
      }
      this.duplex.push(frame);
    }
  }
}
