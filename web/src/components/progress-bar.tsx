/** A horizontal bar for a fraction from 0 to 1. */
export function ProgressBar({ fraction, label }: { fraction: number; label?: string }) {
  const percent = Math.max(0, Math.min(100, fraction * 100));
  return (
    <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(percent)} aria-label={label}>
      <div className="progress-fill" style={{ width: `${percent}%` }} />
    </div>
  );
}
