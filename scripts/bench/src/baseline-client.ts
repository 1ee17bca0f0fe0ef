// The baseline contender: the same job written directly on Node's built-in node:http2 client,
// the way an application without the runtime would: one session, the downchannel as a GET
// whose multipart body is scanned for Clova.Hello, events as multipart POSTs built exactly as
// the runtime builds them (fresh messageId, fresh random boundary, same headers, same bytes),
// PING through session.ping(), and a keepalive PING on an interval with a 10-s deadline.
import { randomBytes, randomUUID } from 'node:crypto';
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import type { Contender, ContenderOptions } from './contender';
import { BENCH_USER_AGENT, eventMetadataJson } from './workload';

const METADATA_HEADERS = 'Content-Disposition: form-data; name="metadata"\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n';
const HELLO_TIMEOUT_MS = 15_000; // as the runtime's DEFAULT_HELLO_TIMEOUT_MS
const PING_TIMEOUT_MS = 10_000; // as the runtime's keepalive: no ACK within this → connection dead

function eventBody(): { body: Buffer; contentType: string } {
  const metadata = eventMetadataJson(randomUUID());
  let boundary = `cic-${randomBytes(24).toString('base64url')}`;
  while (metadata.includes(boundary)) boundary = `cic-${randomBytes(24).toString('base64url')}`;
  return {
    body: Buffer.from(`--${boundary}\r\n${METADATA_HEADERS}${metadata}\r\n--${boundary}--\r\n`, 'utf8'),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

/** Calls `onPart` with each JSON part of a multipart body as it completes. */
function multipartScanner(boundary: string, onPart: (json: unknown) => void): (chunk: Buffer) => void {
  const delimiter = `\r\n--${boundary}`;
  let text = '';
  let started = false;
  return (chunk) => {
    text += chunk.toString('utf8');
    if (!started) {
      const first = text.indexOf(`--${boundary}`);
      if (first < 0) return;
      text = text.slice(first + boundary.length + 2);
      started = true;
    }
    for (let end = text.indexOf(delimiter); end >= 0; end = text.indexOf(delimiter)) {
      const part = text.slice(0, end);
      text = text.slice(end + delimiter.length);
      const bodyAt = part.indexOf('\r\n\r\n');
      if (bodyAt < 0) continue;
      try {
        onPart(JSON.parse(part.slice(bodyAt + 4)));
      } catch {
        // not a JSON part (an attachment): skipped
      }
    }
  };
}

export function createBaselineContender(o: ContenderOptions): Contender {
  const auth = `Bearer ${o.token}`;
  let session: http2.ClientHttp2Session | undefined;
  let keepalive: NodeJS.Timeout | undefined;
  let downchannel: http2.ClientHttp2Stream | undefined;

  const ping = () =>
    new Promise<void>((resolve, reject) => {
      session!.ping((err) => (err ? reject(err) : resolve()));
    });
  // The keepalive PING with a deadline, like the runtime's (one timer per PING, cleared on ACK).
  const keepalivePing = (s: http2.ClientHttp2Session) => {
    const deadline = setTimeout(() => s.destroy(new Error('PING timeout')), PING_TIMEOUT_MS);
    s.ping((err) => {
      clearTimeout(deadline);
      if (err) s.destroy(err);
    });
  };

  return {
    connect() {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no Clova.Hello in time')), HELLO_TIMEOUT_MS);
        const fail = (e: Error) => {
          clearTimeout(timer);
          reject(e);
        };
        const s = http2.connect(o.url, { ca: o.caMode === 'pinned' ? o.ca : [...tls.rootCertificates, o.ca] });
        session = s;
        s.once('error', fail);
        const dc = s.request({ ':method': 'GET', ':path': '/v1/directives', authorization: auth, 'user-agent': BENCH_USER_AGENT });
        downchannel = dc;
        dc.once('error', fail);
        dc.once('response', (h) => {
          const boundary = /boundary=("?)([^";]+)\1/.exec(String(h['content-type'] ?? ''))?.[2];
          if (h[':status'] !== 200 || !boundary) return fail(new Error(`downchannel answered ${h[':status']}`));
          dc.on(
            'data',
            multipartScanner(boundary, (part) => {
              const header = (part as { directive?: { header?: { namespace?: string; name?: string } } }).directive?.header;
              if (header?.namespace === 'Clova' && header.name === 'Hello') {
                clearTimeout(timer);
                keepalive ??= setInterval(() => keepalivePing(s), o.pingIntervalMs);
                resolve();
              }
            }),
          );
        });
      });
    },
    sendEvent() {
      const { body, contentType } = eventBody();
      return new Promise<number>((resolve, reject) => {
        const req = session!.request({ ':method': 'POST', ':path': '/v1/events', authorization: auth, 'user-agent': BENCH_USER_AGENT, 'content-type': contentType });
        let status = 0;
        req.once('response', (h) => (status = Number(h[':status'])));
        req.once('error', reject);
        req.on('data', () => {});
        req.once('end', () => resolve(status));
        req.end(body);
      });
    },
    ping,
    close() {
      clearInterval(keepalive);
      downchannel?.close(http2.constants.NGHTTP2_CANCEL);
      return new Promise<void>((resolve) => (session ? session.close(() => resolve()) : resolve()));
    },
  };
}
