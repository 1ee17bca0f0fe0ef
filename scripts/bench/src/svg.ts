// A hand-written SVG bar chart of the headline ratios (runtime ÷ node:http2): one bar per
// targeted figure at its median, a whisker for min–max, a tick for the target, and a line
// at 1.0 (parity).
import type { MetricResult } from './report';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function ratioChart(metrics: MetricResult[], meta: Record<string, unknown>): string {
  const rows = metrics.filter((m) => m.ratio && m.ratio.values.length && m.target?.startsWith('≤'));
  const W = 820;
  const left = 300;
  const right = 110;
  const top = 58;
  const rowH = 34;
  const H = top + rows.length * rowH + 46;
  const maxRatio = Math.max(1.2, ...rows.map((r) => r.ratio!.max * 1.05));
  const x = (v: number) => left + (v / maxRatio) * (W - left - right);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="13">`);
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  out.push(`<text x="12" y="22" font-size="15" font-weight="bold">cic-runtime ÷ node:http2 (lower is better)</text>`);
  const sub = `${String(meta.date ?? '').slice(0, 10)} · node ${meta.clientNode} ${meta.clientArch}${meta.emulated ? ' (emulated)' : ''} · median, whisker min–max, ▏target`;
  out.push(`<text x="12" y="42" fill="#555">${esc(sub)}</text>`);
  for (const t of [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 2, 3, 4].filter((t) => t <= maxRatio)) {
    out.push(`<line x1="${x(t)}" y1="${top - 6}" x2="${x(t)}" y2="${H - 36}" stroke="${t === 1 ? '#333' : '#e3e3e3'}" stroke-width="${t === 1 ? 1.5 : 1}"/>`);
    out.push(`<text x="${x(t)}" y="${H - 20}" text-anchor="middle" fill="#555">${t}×</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    const s = r.ratio!;
    const target = Number(/≤ ([\d.]+)×/.exec(r.target!)?.[1]);
    const color = r.met ? '#2e8b57' : '#c0392b';
    out.push(`<text x="${left - 8}" y="${y + 17}" text-anchor="end">${esc(r.label)}</text>`);
    out.push(`<rect x="${left}" y="${y + 5}" width="${Math.max(1, x(s.median) - left)}" height="${rowH - 12}" fill="${color}" opacity="0.85"/>`);
    out.push(`<line x1="${x(s.min)}" y1="${y + rowH / 2 - 1}" x2="${x(s.max)}" y2="${y + rowH / 2 - 1}" stroke="#222" stroke-width="1.5"/>`);
    out.push(`<line x1="${x(s.min)}" y1="${y + 10}" x2="${x(s.min)}" y2="${y + rowH - 12}" stroke="#222"/>`);
    out.push(`<line x1="${x(s.max)}" y1="${y + 10}" x2="${x(s.max)}" y2="${y + rowH - 12}" stroke="#222"/>`);
    if (Number.isFinite(target)) {
      out.push(`<line x1="${x(target)}" y1="${y + 2}" x2="${x(target)}" y2="${y + rowH - 4}" stroke="#1f4e9c" stroke-width="3"/>`);
    }
    out.push(`<text x="${Math.max(x(s.max), x(s.median), Number.isFinite(target) ? x(target) : 0) + 8}" y="${y + 17}" fill="${color}">${s.median.toFixed(2)}× (≤ ${target})</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
