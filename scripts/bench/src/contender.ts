// What each contender offers the measurement harness. Both do the same job over one TLS
// HTTP/2 connection: open the downchannel and wait for Clova.Hello (connect), send the
// workload's event as a multipart POST and wait for its status (sendEvent), and measure a
// PING round trip (ping).

export type ContenderKind = 'runtime' | 'baseline';
/** 'system': the system's roots plus the bench CA; 'pinned': the bench CA alone. */
export type CaMode = 'system' | 'pinned';

export interface ContenderOptions {
  url: string;
  /** PEM of the CA that signed the server's certificate. */
  ca: string;
  caMode: CaMode;
  token: string;
  /** Keepalive PING interval while connected (the runtime's default: 60 s). */
  pingIntervalMs: number;
}

export interface Contender {
  /** Resolves once Clova.Hello arrived on the downchannel. */
  connect(): Promise<void>;
  /** Resolves with the HTTP status of the event's response. */
  sendEvent(): Promise<number>;
  /** One PING; resolves when its ACK arrived. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
