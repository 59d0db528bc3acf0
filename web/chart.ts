import { html, raw, esc, type Html } from './html.js';
import { fmtBytes } from '../src/sys/bytes.js';
import type { DiskSample } from '../src/domain/capacity.js';

const W = 640;
const H = 220;
const L = 44;
const R = 10;
const T = 10;
const B = 28;

type Series = { volume: 'data' | 'backup'; cls: string; label: string };
const SERIES: Series[] = [
  { volume: 'data', cls: 'data', label: 'data volume' },
  { volume: 'backup', cls: 'backup', label: 'backup volume' },
];

/** The chart's coordinates: time (the last `spanMs` up to `now`) and used percent to SVG x and y. */
interface Axes {
  now: number;
  spanMs: number;
  x: (t: number) => number;
  y: (pct: number) => number;
}
function axesFor(now: number, spanMs: number): Axes {
  return {
    now,
    spanMs,
    x: (t: number) => L + ((t - (now - spanMs)) / spanMs) * (W - L - R),
    y: (pct: number) => T + (1 - pct / 100) * (H - T - B),
  };
}

const ago = (ms: number) =>
  ms >= 2 * 86_400_000
    ? `-${Math.round(ms / 86_400_000)} d`
    : ms >= 2 * 3_600_000
      ? `-${Math.round(ms / 3_600_000)} h`
      : ms >= 120_000
        ? `-${Math.round(ms / 60_000)} min`
        : `-${Math.round(ms / 1000)} s`;

/** One volume's used space as a polyline, or a dot for a single sample (so a fresh host shows something). */
function seriesLine(samples: DiskSample[], s: Series, a: Axes): string {
  const pts = samples
    .filter((p) => p.volume === s.volume && p.total_bytes > 0)
    .map((p) => `${a.x(p.at).toFixed(1)},${a.y((100 * (p.total_bytes - p.free_bytes)) / p.total_bytes).toFixed(1)}`);
  if (pts.length === 0) return '';
  if (pts.length === 1) {
    const [cx, cy] = pts[0]!.split(',');
    return `<circle class="${s.cls}" cx="${cx}" cy="${cy}" r="3"/>`;
  }
  return `<polyline class="${s.cls}" fill="none" points="${pts.join(' ')}"/>`;
}

const gridLines = (a: Axes) =>
  [0, 25, 50, 75, 100]
    .map(
      (p) =>
        `<line class="grid" x1="${L}" x2="${W - R}" y1="${a.y(p)}" y2="${a.y(p)}"/><text x="${L - 6}" y="${a.y(p) + 4}" text-anchor="end">${p}%</text>`,
    )
    .join('');

const timeTicks = (a: Axes) =>
  [0, 0.5, 1]
    .map((f) => {
      const t = a.now - a.spanMs + f * a.spanMs;
      const label = f === 1 ? 'now' : ago(a.spanMs * (1 - f));
      return `<text x="${a.x(t)}" y="${H - 8}" text-anchor="${f === 0 ? 'start' : f === 1 ? 'end' : 'middle'}">${esc(label)}</text>`;
    })
    .join('');

function latestRow(s: Series, p: DiskSample | undefined): Html {
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
}

/** The latest figures of each volume, for screen readers and for reading exact values. */
function latestTable(samples: DiskSample[]): Html {
  const latest = SERIES.map((s) => [...samples].reverse().find((p) => p.volume === s.volume));
  return html`<table class="compact">
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
      ${SERIES.map((s, i) => latestRow(s, latest[i]))}
    </tbody>
  </table>`;
}

/**
 * Used space of the data and backup volumes over time, as an inline SVG (no script, no library),
 * with the latest figures in a table beside it for screen readers and for reading exact values.
 */
export function diskChart(samples: DiskSample[], now: number, maxSpanMs: number): Html {
  // The time axis covers the samples there are (at least a minute, at most maxSpanMs), so a new
  // host's first minutes are as readable as a month of history.
  const oldest = samples.length ? samples[0]!.at : now;
  const a = axesFor(now, Math.min(maxSpanMs, Math.max(60_000, now - oldest)));
  const lines = SERIES.map((s) => seriesLine(samples, s, a));
  return html`<figure class="chart" id="disk-chart">
      <svg viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="disk-chart-title" preserveAspectRatio="xMidYMid meet">
        <title id="disk-chart-title">
          Used space of the data and backup volumes since ${ago(a.spanMs).slice(1)} ago (${samples.length / 2} samples)
        </title>
        ${raw(gridLines(a) + timeTicks(a) + lines.join(''))}
      </svg>
      <figcaption>
        <span class="key data">data volume</span> <span class="key backup">backup volume</span> · used space, sampled by the scheduler
      </figcaption>
    </figure>
    ${latestTable(samples)}`;
}
