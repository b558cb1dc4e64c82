/**
 * A line chart over time in plain SVG: one or more series of (time, value) points, a y axis
 * from 0 with up to four gridlines whose labels all differ, an axis title with the unit, and
 * the first, middle and last time on the x axis.
 */
import { formatClock } from '../lib/format';

export interface ChartPoint {
  /** Milliseconds since the epoch. */
  t: number;
  v: number;
}

export interface ChartSeries {
  label: string;
  /** A CSS colour. */
  color: string;
  points: ChartPoint[];
}

const WIDTH = 640;
const MARGIN = { top: 22, right: 16, bottom: 26, left: 72 };

/** 0, then the smallest of 1, 2, 2.5, 5 x 10^n that is at least `max`. */
function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= max) return step * magnitude;
  }
  return 10 * magnitude;
}

/** 0 to `yMax` in quarters, halves or the ends only: the finest split whose labels all differ. */
export function distinctTicks(yMax: number, formatValue: (value: number) => string): number[] {
  for (const parts of [4, 2, 1]) {
    const ticks = Array.from({ length: parts + 1 }, (_, i) => (i / parts) * yMax);
    const labels = ticks.map(formatValue);
    if (new Set(labels).size === labels.length) return ticks;
  }
  return [0, yMax];
}

export function LineChart({
  series,
  formatValue,
  height = 180,
  emptyText,
  title,
  yTitle,
}: {
  series: ChartSeries[];
  formatValue: (value: number) => string;
  height?: number;
  /** Shown instead of the chart while there are fewer than two points. */
  emptyText: string;
  /** The accessible name of the chart. */
  title: string;
  /** What the y axis measures, with its unit, e.g. "rows per second". */
  yTitle: string;
}) {
  const all = series.flatMap((s) => s.points);
  if (series.every((s) => s.points.length < 2)) {
    return (
      <div className="chart-empty" style={{ height }}>
        {emptyText}
      </div>
    );
  }
  const tMax = Math.max(...all.map((p) => p.t));
  // At least 20 s wide, so that the first two points do not stretch across the chart.
  const tMin = Math.min(Math.min(...all.map((p) => p.t)), tMax - 20_000);
  const yMax = niceMax(Math.max(...all.map((p) => p.v)));
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const x = (t: number) => MARGIN.left + ((t - tMin) / (tMax - tMin)) * plotWidth;
  const y = (v: number) => MARGIN.top + plotHeight - (Math.max(0, v) / yMax) * plotHeight;
  // Gridlines whose labels differ: small maxima (3 rows/s) would print "1" twice at quarters.
  const ticks = distinctTicks(yMax, formatValue);
  const tMid = (tMin + tMax) / 2;

  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={title} preserveAspectRatio="xMidYMid meet">
        {ticks.map((tick) => (
          <g key={tick}>
            <line className="chart-grid" x1={MARGIN.left} x2={WIDTH - MARGIN.right} y1={y(tick)} y2={y(tick)} />
            <text className="chart-label chart-y-tick" x={MARGIN.left - 8} y={y(tick)} textAnchor="end" dominantBaseline="middle">
              {formatValue(tick)}
            </text>
          </g>
        ))}
        <text className="chart-label" x={MARGIN.left} y={height - 6} textAnchor="start">
          {formatClock(tMin)}
        </text>
        <text className="chart-label" x={x(tMid)} y={height - 6} textAnchor="middle">
          {formatClock(tMid)}
        </text>
        <text className="chart-label" x={WIDTH - MARGIN.right} y={height - 6} textAnchor="end">
          {formatClock(tMax)}
        </text>
        <text className="chart-label chart-axis-title" x={MARGIN.left} y={12} textAnchor="start" data-testid="chart-y-title">
          {yTitle}
        </text>
        {series.map((s) =>
          s.points.length < 2 ? null : (
            <polyline
              key={s.label}
              className="chart-line"
              fill="none"
              stroke={s.color}
              points={s.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ')}
            />
          ),
        )}
      </svg>
      {series.length > 1 && (
        <figcaption className="chart-legend">
          {series.map((s) => (
            <span key={s.label}>
              <span className="chart-swatch" style={{ background: s.color }} /> {s.label}
            </span>
          ))}
        </figcaption>
      )}
    </figure>
  );
}
