// Messages between the soak driver (the test process, which also runs the CIC emulator) and
// the soak client (a child process started with --expose-gc that runs only the CicClient, so
// its memory figures are the client's alone).

/** One memory and resource reading of the client process, taken after forced GCs. */
export interface SoakSample {
  /** ms since the client process started. */
  atMs: number;
  rss: number;
  heapUsed: number;
  /** The part of heapUsed that is compiled code (code spaces): grows as V8 optimizes, not a leak. */
  codeUsed: number;
  external: number;
  arrayBuffers: number;
  /** The addon's process-wide count of native sessions (binding.liveSessions()). */
  liveSessions: number;
  /** Native streams of the current connection (Session.stats()[0]); -1 when there is none. */
  liveStreams: number;
  bufferedBodyBytes: number;
  pendingOutputBytes: number;
  inFlight: number;
  queued: number;
  /** process.getActiveResourcesInfo() counted by kind (sockets, timers …). */
  resources: Record<string, number>;
}

export interface SoakReport {
  readyCount: number;
  /** `${from}->${to} (${reason})` → count; every transition the client made. */
  transitions: Record<string, number>;
  pings: number;
  maxPingRttMs: number;
  eventsSent: number;
  eventsOk: number;
  /** Failures by error code ('UNCODED' for a rejection that is not a CicError). */
  eventsFailed: Record<string, number>;
  /** Events whose promise had not settled when the report was taken. */
  eventsUnsettled: number;
  /** Successful events by HTTP status (each one is also reported as an 'ok' message). */
  okByStatus: Record<number, number>;
  /** Directives delivered to the application, by `namespace.name` and source. */
  directives: Record<string, number>;
  /** Warnings and errors the client logged, by message. */
  logged: Record<string, number>;
  problems: number;
  final: SoakSample;
}

export type DriverMessage =
  /** `snapshot`: also write a V8 heap snapshot there (after the reading), for leak hunting. */
  /** `quiet`: pause events until every one settled (as at the end), so readings compare like with like. */
  | { type: 'sample'; id: number; snapshot?: string; quiet?: boolean }
  | { type: 'finish'; snapshot?: string }
  | { type: 'stop' };

export type ClientMessage =
  | { type: 'ready'; n: number }
  | { type: 'directive'; seq: number }
  /** An event succeeded (sent at once: the client process keeps no per-event record). */
  | { type: 'ok'; messageId: string; status: number }
  | { type: 'sample'; id: number; sample: SoakSample }
  | { type: 'report'; report: SoakReport }
  | { type: 'stopped'; liveSessions: number; resources: Record<string, number> }
  | { type: 'fatal'; message: string };
