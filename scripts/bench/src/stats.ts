// Summaries: median with min–max over repetitions, and percentiles of one sample set.

export interface Summary {
  median: number;
  min: number;
  max: number;
  values: number[];
}

/** Median (mean of the middle two for an even count), min and max; NaN for no values. */
export function summarize(values: number[]): Summary {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, values };
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, values };
}

/** Nearest-rank percentile (p in 0..100) of a sample set; sorts a copy. */
export function percentile(samples: ArrayLike<number>, p: number): number {
  if (samples.length === 0) return NaN;
  const s = Float64Array.from(samples).sort();
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1]!;
}
