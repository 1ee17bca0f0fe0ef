// The job both contenders do, defined once so it is provably the same: one CIC event of about
// 1 KB of metadata JSON (System.SynchronizeState with a realistic device context), the fixed
// bearer token the bench server accepts, and the User-Agent both send.

/** Accepted by the bench server and by nothing else; authentication is not benchmarked. */
export const BENCH_TOKEN = 'bench-token-not-a-secret';
export const BENCH_USER_AGENT = 'CicBench/Speaker/1.0.0 (Linux;bench)';

export const EVENT_NAMESPACE = 'System';
export const EVENT_NAME = 'SynchronizeState';

export interface ContextItem {
  header: { namespace: string; name: string };
  payload: Record<string, unknown>;
}

/** Client state a speaker reports with every event (the bulk of a real event's metadata). */
export const EVENT_CONTEXT: ContextItem[] = [
  { header: { namespace: 'Alerts', name: 'AlertsState' }, payload: { allAlerts: [], activeAlerts: [] } },
  {
    header: { namespace: 'AudioPlayer', name: 'PlaybackState' },
    payload: { offsetInMilliseconds: 0, playerActivity: 'IDLE', repeatMode: 'NONE', totalInMilliseconds: 0, token: '' },
  },
  {
    header: { namespace: 'Device', name: 'DeviceState' },
    payload: {
      localTime: '2026-11-22T09:00:00+09:00',
      microphone: { actions: ['TurnOn', 'TurnOff'], state: 'on' },
      volume: { actions: ['SetValue', 'Increase', 'Decrease'], min: 0, max: 15, value: 7, mute: false },
    },
  },
  { header: { namespace: 'Clova', name: 'Location' }, payload: { latitude: '37.3595704', longitude: '127.1052062' } },
  { header: { namespace: 'SpeechSynthesizer', name: 'SpeechState' }, payload: { token: '', playerActivity: 'FINISHED', offsetInMilliseconds: 0 } },
  { header: { namespace: 'Speaker', name: 'VolumeState' }, payload: { volume: 7, muted: false } },
];

export const EVENT_PAYLOAD: Record<string, unknown> = { reason: 'periodic' };

/** What a contender hands its CIC client (the runtime) or turns into metadata (the baseline). */
export function benchEvent(): { namespace: string; name: string; payload: Record<string, unknown>; context: ContextItem[] } {
  return { namespace: EVENT_NAMESPACE, name: EVENT_NAME, payload: EVENT_PAYLOAD, context: EVENT_CONTEXT };
}

/** The metadata JSON as both contenders build it (same key order as buildEventMetadata). */
export function eventMetadataJson(messageId: string): string {
  return JSON.stringify({
    context: EVENT_CONTEXT,
    event: { header: { namespace: EVENT_NAMESPACE, name: EVENT_NAME, messageId }, payload: EVENT_PAYLOAD },
  });
}
