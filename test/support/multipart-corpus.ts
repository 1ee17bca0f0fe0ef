// Sample CIC multipart bodies shared by the parser, directive and fuzz tests. Every body is
// built with writeMultipart (or by hand where the writer cannot express the quirk), so each
// sample lists what a correct parser must find in it.
import { writeMultipart } from '../../src/cic/multipart-writer';

export const BOUNDARY = 'cic-7d4a1f90-boundary';

export const HELLO = {
  directive: { header: { messageId: '2ca2ec70-c39d-4741-8a34-8aedd3b24760', namespace: 'Clova', name: 'Hello' }, payload: {} },
};

export const SPEAK_CID = 'b9a4d6c2-5f1e-4a83-9e0c-1d2f3a4b5c6d';

export const SPEAK = {
  directive: {
    header: { namespace: 'SpeechSynthesizer', name: 'Speak', messageId: 'a1f7b3c0-1111-4b6a-8c2d-0e9f8a7b6c5d', dialogRequestId: 'dlg-1' },
    payload: { format: 'AUDIO_MPEG', token: 'tts-token-1', url: `cid:${SPEAK_CID}` },
  },
};

export const PLAY_CID = 'play-stream-42@clova';

export const PLAY = {
  directive: {
    header: { namespace: 'AudioPlayer', name: 'Play', messageId: 'c3d4e5f6-2222-4b6a-8c2d-0e9f8a7b6c5d', dialogRequestId: 'dlg-1' },
    payload: { audioItem: { audioItemId: 'item-1', stream: { url: `cid:${PLAY_CID}`, offsetInMilliseconds: 0 } }, playBehavior: 'REPLACE_ALL' },
  },
};

export const STOP_CAPTURE = {
  directive: { header: { namespace: 'SpeechRecognizer', name: 'StopCapture', messageId: 'd4e5f6a7-3333-4b6a-8c2d-0e9f8a7b6c5d', dialogRequestId: 'dlg-1' }, payload: {} },
};

export const EXCEPTION = {
  directive: { header: { namespace: 'System', name: 'Exception', messageId: 'e5f6a7b8-4444' }, payload: { code: 401, description: 'token expired' } },
};

/** Deterministic xorshift32 in [0, 1). */
export function seededRandom(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
}

/**
 * Binary audio-like bytes full of near-misses: CR, LF, `--`, `\r\n--` + a truncated or
 * altered boundary, but never `\n--` + the whole boundary.
 */
export function trickyBinary(size: number, seed = 7, boundary = BOUNDARY): Buffer {
  const rnd = seededRandom(seed);
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = Math.floor(rnd() * 256);
  const traps = [
    '\r\n--',
    `\r\n--${boundary.slice(0, -1)}\r`,
    `\r\n--${boundary.slice(0, -1)}#`,
    `\n-${boundary}`,
    `\r\r\n--${boundary.slice(0, Math.min(5, boundary.length - 1))}`,
    '\r',
    '\n',
    `--${boundary}`, // not at a line start: content
  ];
  for (let t = 0; t < traps.length; t++) {
    const at = Math.floor(((t + 1) * size) / (traps.length + 2));
    out.write(traps[t]!, at, 'latin1');
  }
  // Random bytes can form LF + "--" + boundary only with negligible probability; make sure.
  if (out.includes(`\n--${boundary}`)) throw new Error('trickyBinary produced a delimiter');
  return out;
}

export const SPEAK_AUDIO = trickyBinary(3000, 11);
export const PLAY_AUDIO = trickyBinary(1200, 12);

const json = (v: unknown) => JSON.stringify(v);
const JSON_PART = { 'Content-Type': 'application/json; charset=UTF-8' };

export interface ExpectedPart {
  contentType?: string;
  contentId?: string;
  name?: string;
  body: Buffer;
}

export interface Sample {
  name: string;
  contentType: string;
  boundary: string;
  body: Buffer;
  /** Ends with the close delimiter (an event response) or not (a downchannel). */
  finite: boolean;
  parts: ExpectedPart[];
}

function sample(name: string, contentType: string, boundary: string, finite: boolean, parts: ExpectedPart[], body: Buffer): Sample {
  return { name, contentType, boundary, body, finite, parts };
}

const speakJson = Buffer.from(json(SPEAK));
const playJson = Buffer.from(json(PLAY));
const helloJson = Buffer.from(json(HELLO));
const stopJson = Buffer.from(json(STOP_CAPTURE));

export const SAMPLES: Sample[] = [
  sample('event response: Speak then its attachment (multipart/related)', `multipart/related; boundary=${BOUNDARY}`, BOUNDARY, true, [
    { contentType: 'application/json; charset=UTF-8', body: speakJson },
    { contentType: 'application/octet-stream', contentId: SPEAK_CID, body: SPEAK_AUDIO },
  ], writeMultipart(BOUNDARY, [
    { headers: JSON_PART, body: speakJson },
    { headers: { 'Content-Type': 'application/octet-stream', 'Content-ID': `<${SPEAK_CID}>` }, body: SPEAK_AUDIO },
  ])),

  sample('event response: attachment first, lower-case headers, Content-ID without <>', `multipart/related; type="application/json"; boundary="${BOUNDARY}"`, BOUNDARY, true, [
    { contentType: 'application/octet-stream', contentId: PLAY_CID, body: PLAY_AUDIO },
    { contentType: 'application/json', body: playJson },
    { contentType: 'application/json', body: stopJson },
  ], writeMultipart(BOUNDARY, [
    { headers: { 'content-type': 'application/octet-stream', 'content-id': PLAY_CID }, body: PLAY_AUDIO },
    { headers: { 'CONTENT-TYPE': 'application/json' }, body: playJson },
    { headers: { 'Content-type': 'application/json' }, body: stopJson },
  ])),

  sample('downchannel: Hello and a directive, never closed', `multipart/related; boundary=${BOUNDARY};`, BOUNDARY, false, [
    { contentType: 'application/json; charset=UTF-8', body: helloJson },
    { contentType: 'application/json; charset=UTF-8', body: stopJson },
  ], writeMultipart(BOUNDARY, [
    { headers: JSON_PART, body: helloJson },
    { headers: JSON_PART, body: stopJson },
  ], { close: false })),

  sample('LF-only line endings, preamble and epilogue', `Multipart/Mixed; BOUNDARY = "${BOUNDARY}" ; charset=utf-8`, BOUNDARY, true, [
    { contentType: 'application/json', body: speakJson },
    { contentType: 'audio/mpeg', contentId: SPEAK_CID, body: SPEAK_AUDIO },
  ], writeMultipart(BOUNDARY, [
    { headers: { 'Content-Type': 'application/json' }, body: speakJson },
    { headers: { 'Content-Type': 'audio/mpeg', 'Content-Id': `<${SPEAK_CID}>` }, body: SPEAK_AUDIO },
  ], { newline: '\n', preamble: 'This is a multi-part message in MIME format.\n--not-the-boundary', epilogue: 'trailing words\r\n--' + BOUNDARY + '\r\n' })),

  sample('form-data names, transport padding, short boundary', 'multipart/form-data; boundary="a b:c"', 'a b:c', true, [
    { contentType: 'application/json; charset=UTF-8', name: 'metadata', body: Buffer.from('{"event":{}}') },
    { contentType: 'application/octet-stream', name: 'audio', body: trickyBinary(500, 3, 'a b:c') },
  ], writeMultipart('a b:c', [
    { headers: { 'Content-Disposition': 'form-data; name="metadata"', 'Content-Type': 'application/json; charset=UTF-8' }, body: '{"event":{}}' },
    { headers: { 'Content-Disposition': 'form-data; name=audio', 'Content-Type': 'application/octet-stream' }, body: trickyBinary(500, 3, 'a b:c') },
  ], { padding: ' \t ' })),

  sample('JSON part without content type, System.Exception, empty body part', `multipart/related; boundary=${BOUNDARY}`, BOUNDARY, true, [
    { body: Buffer.from(json(EXCEPTION)) },
    { contentType: 'application/octet-stream', contentId: 'empty', body: Buffer.alloc(0) },
  ], writeMultipart(BOUNDARY, [
    { headers: {}, body: json(EXCEPTION) },
    { headers: { 'Content-Type': 'application/octet-stream', 'Content-ID': '<empty>' } },
  ])),
];

/** Splits `body` at the given offsets (sorted, within range). */
export function splitAt(body: Buffer, points: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(body.subarray(prev, p));
    prev = p;
  }
  out.push(body.subarray(prev));
  return out;
}

/** 1..maxPieces pieces at random offsets (possibly empty pieces). */
export function randomSplit(body: Buffer, rnd: () => number, maxPieces = 8): Buffer[] {
  const n = 1 + Math.floor(rnd() * maxPieces);
  const points = Array.from({ length: n - 1 }, () => Math.floor(rnd() * (body.length + 1))).sort((a, b) => a - b);
  return splitAt(body, points);
}
