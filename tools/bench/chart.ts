/**
 * The benchmark's chart, drawn by Apache ECharts' server-side SVG renderer: throughput as a share
 * of the framework-free limit (a bar per ingest size and drain case, its target as a red mark),
 * and latency on a log scale (p50 as a ring, p99 as a dot, ours above the limit, the end-to-end
 * bound as a line).
 */
import * as echarts from 'echarts';
import { drainLabel } from './drain';
import type { Summary, Targets } from './report';

const WIDTH = 900;
const ROW_PX = 30;
const COLORS = { met: '#2e8b57', missed: '#d9822b', none: '#2f6db5', target: '#c0392b' };
const SIDE_COLORS = { ours: '#2f6db5', limit: '#8a939d' };

const finite = (value: number) => (Number.isFinite(value) ? value : null);
const ms = (value: number) => (value < 10 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US'));

/** The whole chart as a standalone SVG; `caption` goes under the title (machine and date). */
export function chartSvg(summary: Summary, targets: Targets, caption: string): string {
  const ratios = [
    ...summary.ingest.map((s) => ({
      label: `ingest, ${s.entriesPerRequest.toLocaleString('en-US')}/request`,
      ratio: s.ratio,
      rate: s.ours.rate,
      target: s.entriesPerRequest === targets.ingestSize ? targets.ingestRatio : undefined,
    })),
    ...summary.drain.map((d) => ({
      label: `drain, ${drainLabel(d)}`,
      ratio: d.ratio,
      rate: d.ours.rate,
      target: targets.drainRatio,
    })),
  ].reverse(); // ECharts draws a category axis bottom-up.
  const latencies = [
    ...summary.ingest.map((s) => ({
      label: `POST /message, ${s.entriesPerRequest.toLocaleString('en-US')}/request`,
      ...s,
    })),
    ...(summary.endToEnd ? [{ label: 'end to end, 201 to file', ...summary.endToEnd }] : []),
  ]
    .flatMap((l) => (['ours', 'limit'] as const).map((side) => ({ label: `${l.label}: ${side}`, side, ...l[side] })))
    .reverse();

  const top = 100;
  const ratioHeight = Math.max(ratios.length, 1) * ROW_PX;
  const latencyTop = top + ratioHeight + 90;
  const latencyHeight = Math.max(latencies.length, 1) * ROW_PX;
  const height = latencyTop + latencyHeight + 60;
  const grid = { left: 250, right: 190 };

  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width: WIDTH, height });
  chart.setOption({
    animation: false,
    backgroundColor: '#ffffff',
    textStyle: { fontFamily: '-apple-system, Segoe UI, Helvetica, Arial, sans-serif' },
    title: [
      { text: 'npm run bench: ours beside the framework-free limit, same run', subtext: caption, left: 20, top: 8 },
      {
        text: 'Throughput, as a share of the limit (red mark: target)',
        left: 20,
        top: top - 26,
        textStyle: { fontSize: 13 },
      },
      { text: 'Latency, log scale (ring: p50, dot: p99)', left: 20, top: latencyTop - 26, textStyle: { fontSize: 13 } },
    ],
    grid: [
      { ...grid, top, height: ratioHeight },
      { ...grid, top: latencyTop, height: latencyHeight },
    ],
    xAxis: [
      { gridIndex: 0, type: 'value', min: 0, max: (extent: { max: number }) => Math.max(1.2, extent.max * 1.05) },
      {
        gridIndex: 1,
        type: 'log',
        // A decade beyond the values each way, so that the shortest bar shows and the bound fits.
        min: (extent: { min: number }) => 10 ** Math.floor(Math.log10(extent.min * 0.9)),
        max: (extent: { max: number }) =>
          10 ** Math.ceil(Math.log10(Math.max(extent.max, targets.endToEndP99Ms) * 1.2)),
        axisLabel: { formatter: (value: number) => `${ms(value)} ms` },
      },
    ],
    yAxis: [
      { gridIndex: 0, type: 'category', data: ratios.map((r) => r.label) },
      { gridIndex: 1, type: 'category', data: latencies.map((l) => l.label) },
    ],
    series: [
      {
        type: 'bar',
        xAxisIndex: 0,
        yAxisIndex: 0,
        barWidth: ROW_PX * 0.6,
        data: ratios.map((r) => ({
          value: finite(r.ratio),
          itemStyle: { color: r.target === undefined ? COLORS.none : r.ratio >= r.target ? COLORS.met : COLORS.missed },
          label: {
            show: true,
            position: 'right',
            formatter: Number.isFinite(r.ratio)
              ? `${r.ratio.toFixed(2)}  (${Math.round(r.rate).toLocaleString('en-US')} entries/s)`
              : '? (too few files to time)',
          },
        })),
        markLine: {
          silent: true,
          symbol: 'none',
          data: [{ xAxis: 1 }],
          lineStyle: { color: '#555' },
          label: { formatter: '1.0 = limit' },
        },
      },
      {
        type: 'scatter',
        xAxisIndex: 0,
        yAxisIndex: 0,
        symbol: 'rect',
        symbolSize: [3, ROW_PX * 0.85],
        itemStyle: { color: COLORS.target },
        data: ratios.flatMap((r, row) => (r.target === undefined ? [] : [[r.target, row]])),
      },
      ...(['p50', 'p99'] as const).map((quantile) => ({
        type: 'scatter',
        xAxisIndex: 1,
        yAxisIndex: 1,
        symbolSize: 11,
        data: latencies.map((l, row) => ({
          value: [finite(l[quantile]), row],
          itemStyle:
            quantile === 'p99'
              ? { color: SIDE_COLORS[l.side] }
              : { color: '#ffffff', borderColor: SIDE_COLORS[l.side], borderWidth: 2 },
        })),
        label: {
          show: true,
          position: quantile === 'p50' ? 'left' : 'right',
          fontSize: 10,
          formatter: ({ value }: { value: [number, number] }) => `${ms(value[0])} ms`,
        },
        ...(quantile === 'p99' && summary.endToEnd
          ? {
              markLine: {
                silent: true,
                symbol: 'none',
                lineStyle: { color: COLORS.target, width: 2 },
                label: {
                  position: 'end',
                  formatter: `end-to-end p99 target ${ms(targets.endToEndP99Ms)} ms`,
                  color: COLORS.target,
                },
                data: [{ xAxis: targets.endToEndP99Ms }],
              },
            }
          : {}),
      })),
    ],
  });
  const svg = chart.renderToSVGString();
  chart.dispose();
  return `${svg}\n`;
}
