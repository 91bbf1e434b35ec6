/**
 * The benchmark's chart as a standalone SVG: throughput as a share of the framework-free limit
 * (one bar per ingest size and drain case, with its target), and latency on a log scale (p99 as
 * the bar, p50 as a mark, ours beside the limit). Written by hand: no chart library for two panels.
 */
import { drainLabel } from './drain';
import type { Summary, Targets } from './report';

const WIDTH = 880;
const LABEL_WIDTH = 250;
const PLOT_WIDTH = 470;
const ROW = 26;
const COLORS = {
  ours: '#2f6db5',
  limit: '#9aa3ad',
  met: '#2e8b57',
  missed: '#d9822b',
  plain: '#2f6db5',
  target: '#c0392b',
};

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function text(x: number, y: number, content: string, attributes = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attributes}>${escape(content)}</text>`;
}

function rect(x: number, y: number, width: number, height: number, fill: string): string {
  return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(width, 0).toFixed(1)}" height="${height}" fill="${fill}"/>`;
}

function line(x1: number, y1: number, x2: number, y2: number, stroke: string, extra = ''): string {
  return `<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="${stroke}" ${extra}/>`;
}

function formatMs(value: number): string {
  if (!Number.isFinite(value)) return '?';
  return value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value).toLocaleString('en-US')} ms`;
}

function ratioDetail(ratio: number, rate: number): string {
  if (!Number.isFinite(ratio)) return '? (too few files to time)';
  return `${ratio.toFixed(2)}  (${Math.round(rate).toLocaleString('en-US')} entries/s)`;
}

interface RatioBar {
  label: string;
  ratio: number;
  detail: string;
  target?: number;
}

function ratioPanel(bars: RatioBar[], top: number): { svg: string[]; height: number } {
  const svg: string[] = [];
  svg.push(
    text(
      20,
      top + 18,
      'Throughput, as a share of the framework-free limit (1.0 = as fast as the limit)',
      'class="title"',
    ),
  );
  const plotTop = top + 34;
  const maxRatio = Math.max(1.2, ...bars.map((bar) => (Number.isFinite(bar.ratio) ? bar.ratio * 1.05 : 0)));
  const x = (value: number) => LABEL_WIDTH + (value / maxRatio) * PLOT_WIDTH;
  const height = bars.length * ROW;
  for (let tick = 0; tick <= maxRatio + 1e-9; tick += 0.2) {
    svg.push(line(x(tick), plotTop - 4, x(tick), plotTop + height, '#e3e6ea'));
    const label = Math.abs(tick - 1) < 1e-9 ? '1.0 = limit' : tick.toFixed(1);
    svg.push(text(x(tick), plotTop + height + 14, label, 'class="axis" text-anchor="middle"'));
  }
  svg.push(line(x(1), plotTop - 4, x(1), plotTop + height, '#555', 'stroke-dasharray="4 3"'));
  bars.forEach((bar, index) => {
    const y = plotTop + index * ROW;
    const color = bar.target === undefined ? COLORS.plain : bar.ratio >= bar.target ? COLORS.met : COLORS.missed;
    svg.push(text(LABEL_WIDTH - 8, y + 15, bar.label, 'class="label" text-anchor="end"'));
    svg.push(rect(x(0), y + 4, x(Number.isFinite(bar.ratio) ? bar.ratio : 0) - x(0), ROW - 8, color));
    if (bar.target !== undefined) {
      svg.push(line(x(bar.target), y + 1, x(bar.target), y + ROW - 1, COLORS.target, 'stroke-width="2"'));
    }
    svg.push(text(x(Number.isFinite(bar.ratio) ? bar.ratio : 0) + 6, y + 15, bar.detail, 'class="value"'));
  });
  const legendY = plotTop + height + 32;
  svg.push(rect(LABEL_WIDTH, legendY - 9, 10, 10, COLORS.met));
  svg.push(text(LABEL_WIDTH + 14, legendY, 'target met', 'class="axis"'));
  svg.push(rect(LABEL_WIDTH + 90, legendY - 9, 10, 10, COLORS.missed));
  svg.push(text(LABEL_WIDTH + 104, legendY, 'target missed', 'class="axis"'));
  svg.push(rect(LABEL_WIDTH + 196, legendY - 9, 10, 10, COLORS.plain));
  svg.push(text(LABEL_WIDTH + 210, legendY, 'no target', 'class="axis"'));
  svg.push(line(LABEL_WIDTH + 284, legendY - 10, LABEL_WIDTH + 284, legendY + 1, COLORS.target, 'stroke-width="2"'));
  svg.push(text(LABEL_WIDTH + 290, legendY, 'target', 'class="axis"'));
  return { svg, height: legendY + 14 - top };
}

interface LatencyRow {
  label: string;
  ours: { p50: number; p99: number };
  limit: { p50: number; p99: number };
  /** A p99 bound to draw on this row. */
  targetMs?: number;
}

function latencyPanel(rows: LatencyRow[], top: number): { svg: string[]; height: number } {
  const svg: string[] = [];
  svg.push(text(20, top + 18, 'Latency, log scale: bar = p99, mark = p50', 'class="title"'));
  const plotTop = top + 34;
  const values = rows.flatMap((row) => [row.ours.p50, row.ours.p99, row.limit.p50, row.limit.p99, row.targetMs ?? 1]);
  const finite = values.filter((value) => Number.isFinite(value) && value > 0);
  // A decade below the smallest value, so that a mark at exactly 1 ms is not on the axis.
  const low = Math.floor(Math.log10(Math.min(1, ...finite) * 0.9));
  const high = Math.ceil(Math.log10(Math.max(10, ...finite) * 1.2));
  const x = (value: number) =>
    LABEL_WIDTH + ((Math.log10(Math.max(value, 10 ** low)) - low) / (high - low)) * PLOT_WIDTH;
  const rowHeight = ROW * 2 + 6;
  const height = rows.length * rowHeight;
  for (let power = low; power <= high; power++) {
    const value = 10 ** power;
    svg.push(line(x(value), plotTop - 4, x(value), plotTop + height, '#e3e6ea'));
    svg.push(text(x(value), plotTop + height + 14, formatMs(value), 'class="axis" text-anchor="middle"'));
  }
  rows.forEach((row, index) => {
    const y = plotTop + index * rowHeight;
    svg.push(text(LABEL_WIDTH - 8, y + ROW + 4, row.label, 'class="label" text-anchor="end"'));
    (['ours', 'limit'] as const).forEach((side, offset) => {
      const { p50, p99 } = row[side];
      const barY = y + offset * ROW;
      const end = Number.isFinite(p99) ? x(p99) : x(10 ** low);
      svg.push(rect(x(10 ** low), barY + 4, end - x(10 ** low), ROW - 8, COLORS[side]));
      if (Number.isFinite(p50)) svg.push(line(x(p50), barY + 2, x(p50), barY + ROW - 2, '#111', 'stroke-width="2"'));
      svg.push(
        text(
          end + 6,
          barY + 15,
          `${side === 'ours' ? 'ours' : 'limit'}: p50 ${formatMs(p50)}, p99 ${formatMs(p99)}`,
          'class="value"',
        ),
      );
    });
    if (row.targetMs !== undefined) {
      svg.push(line(x(row.targetMs), y, x(row.targetMs), y + ROW * 2, COLORS.target, 'stroke-width="2"'));
      svg.push(text(x(row.targetMs) + 4, y - 2, `p99 target ${formatMs(row.targetMs)}`, 'class="axis" fill="#c0392b"'));
    }
  });
  const legendY = plotTop + height + 32;
  svg.push(rect(LABEL_WIDTH, legendY - 9, 10, 10, COLORS.ours));
  svg.push(text(LABEL_WIDTH + 14, legendY, 'ours (api, consumer)', 'class="axis"'));
  svg.push(rect(LABEL_WIDTH + 150, legendY - 9, 10, 10, COLORS.limit));
  svg.push(text(LABEL_WIDTH + 164, legendY, 'limit (framework-free)', 'class="axis"'));
  return { svg, height: legendY + 14 - top };
}

/** The whole chart; `caption` goes under the title (machine and date). */
export function chartSvg(summary: Summary, targets: Targets, caption: string): string {
  const ratioBars: RatioBar[] = [
    ...summary.ingest.map((s) => ({
      label: `ingest, ${s.entriesPerRequest.toLocaleString('en-US')}/request`,
      ratio: s.ratio,
      detail: ratioDetail(s.ratio, s.ours.rate),
      target: s.entriesPerRequest === targets.ingestSize ? targets.ingestRatio : undefined,
    })),
    ...summary.drain.map((d) => ({
      label: `drain, ${drainLabel(d)}`,
      ratio: d.ratio,
      detail: ratioDetail(d.ratio, d.ours.rate),
      target: targets.drainRatio,
    })),
  ];
  const latencyRows: LatencyRow[] = [
    ...summary.ingest.map((s) => ({
      label: `POST /message, ${s.entriesPerRequest.toLocaleString('en-US')}/request`,
      ours: { p50: s.ours.p50, p99: s.ours.p99 },
      limit: { p50: s.limit.p50, p99: s.limit.p99 },
    })),
    ...(summary.endToEnd
      ? [
          {
            label: 'end to end, 201 to file',
            ours: summary.endToEnd.ours,
            limit: summary.endToEnd.limit,
            targetMs: targets.endToEndP99Ms,
          },
        ]
      : []),
  ];
  const parts: string[] = [];
  let top = 52;
  if (ratioBars.length > 0) {
    const panel = ratioPanel(ratioBars, top);
    parts.push(...panel.svg);
    top += panel.height + 24;
  }
  if (latencyRows.length > 0) {
    const panel = latencyPanel(latencyRows, top);
    parts.push(...panel.svg);
    top += panel.height + 12;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${top}" viewBox="0 0 ${WIDTH} ${top}" ` +
      'font-family="-apple-system, Segoe UI, Helvetica, Arial, sans-serif">',
    '<style>.title{font-size:14px;font-weight:600;fill:#222}.label{font-size:12px;fill:#222}' +
      '.value{font-size:11px;fill:#333}.axis{font-size:10px;fill:#666}.caption{font-size:11px;fill:#555}</style>',
    rect(0, 0, WIDTH, top, '#ffffff'),
    text(20, 24, 'npm run bench: ours beside the framework-free limit, same run', 'class="title"'),
    text(20, 40, caption, 'class="caption"'),
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
