import { html, raw, esc, type Html } from './html.js';
import { fmtBytes } from '../../sys/bytes.js';
import type { DiskSample } from '../../domain/capacity.js';

/**
 * Used space of the data and backup volumes over time, as an inline SVG (no script, no library),
 * with the latest figures in a table beside it for screen readers and for reading exact values.
 */
export function diskChart(samples: DiskSample[], now: number, maxSpanMs: number): Html {
  // The time axis covers the samples there are (at least a minute, at most maxSpanMs), so a new
  // host's first minutes are as readable as a month of history.
  const oldest = samples.length ? samples[0]!.at : now;
  const spanMs = Math.min(maxSpanMs, Math.max(60_000, now - oldest));
  const W = 640;
  const H = 220;
  const L = 44;
  const R = 10;
  const T = 10;
  const B = 28;
  const x = (t: number) => L + ((t - (now - spanMs)) / spanMs) * (W - L - R);
  const y = (pct: number) => T + (1 - pct / 100) * (H - T - B);
  const series: { volume: 'data' | 'backup'; cls: string; label: string }[] = [
    { volume: 'data', cls: 'data', label: 'data volume' },
    { volume: 'backup', cls: 'backup', label: 'backup volume' },
  ];
  const lines = series.map((s) => {
    const pts = samples
      .filter((p) => p.volume === s.volume && p.total_bytes > 0)
      .map((p) => `${x(p.at).toFixed(1)},${y((100 * (p.total_bytes - p.free_bytes)) / p.total_bytes).toFixed(1)}`);
    if (pts.length === 0) return '';
    // A single sample is drawn as a dot, so a fresh host shows something.
    if (pts.length === 1) {
      const [cx, cy] = pts[0]!.split(',');
      return `<circle class="${s.cls}" cx="${cx}" cy="${cy}" r="3"/>`;
    }
    return `<polyline class="${s.cls}" fill="none" points="${pts.join(' ')}"/>`;
  });
  const grid = [0, 25, 50, 75, 100]
    .map(
      (p) =>
        `<line class="grid" x1="${L}" x2="${W - R}" y1="${y(p)}" y2="${y(p)}"/><text x="${L - 6}" y="${y(p) + 4}" text-anchor="end">${p}%</text>`,
    )
    .join('');
  const ago = (ms: number) =>
    ms >= 2 * 86_400_000
      ? `-${Math.round(ms / 86_400_000)} d`
      : ms >= 2 * 3_600_000
        ? `-${Math.round(ms / 3_600_000)} h`
        : ms >= 120_000
          ? `-${Math.round(ms / 60_000)} min`
          : `-${Math.round(ms / 1000)} s`;
  const ticks = [0, 0.5, 1]
    .map((f) => {
      const t = now - spanMs + f * spanMs;
      const label = f === 1 ? 'now' : ago(spanMs * (1 - f));
      return `<text x="${x(t)}" y="${H - 8}" text-anchor="${f === 0 ? 'start' : f === 1 ? 'end' : 'middle'}">${esc(label)}</text>`;
    })
    .join('');
  const latest = series.map((s) => [...samples].reverse().find((p) => p.volume === s.volume));
  return html`<figure class="chart" id="disk-chart">
      <svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="disk-chart-title" preserveAspectRatio="xMidYMid meet">
        <title id="disk-chart-title">
          Used space of the data and backup volumes since ${ago(spanMs).slice(1)} ago (${samples.length / 2} samples)
        </title>
        ${raw(grid + ticks + lines.join(''))}
      </svg>
      <figcaption>
        <span class="key data">data volume</span> <span class="key backup">backup volume</span> · used space, sampled by the scheduler
      </figcaption>
    </figure>
    <table class="compact">
      <caption>
        Latest sample
      </caption>
      <thead>
        <tr>
          <th scope="col">volume</th>
          <th scope="col">path</th>
          <th scope="col">used</th>
          <th scope="col">free</th>
          <th scope="col">size</th>
        </tr>
      </thead>
      <tbody>
        ${series.map((s, i) => {
          const p = latest[i];
          return p
            ? html`<tr>
                <td>${s.label}</td>
                <td><code>${p.path}</code></td>
                <td>${Math.round((100 * (p.total_bytes - p.free_bytes)) / p.total_bytes)}%</td>
                <td>${fmtBytes(p.free_bytes)}</td>
                <td>${fmtBytes(p.total_bytes)}</td>
              </tr>`
            : html`<tr>
                <td>${s.label}</td>
                <td colspan="4">no sample yet</td>
              </tr>`;
        })}
      </tbody>
    </table>`;
}
