/**
 * A line chart over time in plain SVG: one or more series of (time, value) points, a y axis
 * from 0 with four gridlines, the first and last time on the x axis.
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
const MARGIN = { top: 12, right: 16, bottom: 26, left: 72 };

/** 0, then the smallest of 1, 2, 2.5, 5 x 10^n that is at least `max`. */
function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * magnitude >= max) return step * magnitude;
  }
  return 10 * magnitude;
}

export function LineChart({
  series,
  formatValue,
  height = 180,
  emptyText,
  title,
}: {
  series: ChartSeries[];
  formatValue: (value: number) => string;
  height?: number;
  /** Shown instead of the chart while there are fewer than two points. */
  emptyText: string;
  /** The accessible name of the chart. */
  title: string;
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
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * yMax);

  return (
    <figure className="chart">
      <svg viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={title} preserveAspectRatio="xMidYMid meet">
        {ticks.map((tick) => (
          <g key={tick}>
            <line className="chart-grid" x1={MARGIN.left} x2={WIDTH - MARGIN.right} y1={y(tick)} y2={y(tick)} />
            <text className="chart-label" x={MARGIN.left - 8} y={y(tick)} textAnchor="end" dominantBaseline="middle">
              {formatValue(tick)}
            </text>
          </g>
        ))}
        <text className="chart-label" x={MARGIN.left} y={height - 6} textAnchor="start">
          {formatClock(tMin)}
        </text>
        <text className="chart-label" x={WIDTH - MARGIN.right} y={height - 6} textAnchor="end">
          {formatClock(tMax)}
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
