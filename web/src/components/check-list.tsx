import type { VerifyCheck } from '../api/types';

const SEVERITY_TEXT = { ok: 'Passed', warning: 'Warning', error: 'Error' } as const;

/** Verification or connection checks, one row each: result, side, code, message, objects. */
export function CheckList({ checks }: { checks: VerifyCheck[] }) {
  if (checks.length === 0) return <p className="muted">No checks were reported.</p>;
  return (
    <table className="table checks" data-testid="checks">
      <thead>
        <tr>
          <th>Result</th>
          <th>Side</th>
          <th>Check</th>
          <th>What Ferry found</th>
        </tr>
      </thead>
      <tbody>
        {checks.map((check, index) => (
          <tr key={`${check.side}-${check.code}-${index}`} data-severity={check.severity}>
            <td>
              <span className={`severity severity-${check.severity}`}>{SEVERITY_TEXT[check.severity]}</span>
            </td>
            <td>{check.side === 'source' ? 'Source' : 'Destination'}</td>
            <td>
              <code>{check.code}</code>
            </td>
            <td>
              {check.message}
              {check.objects && check.objects.length > 0 && (
                <div className="muted small">
                  {check.objects.slice(0, 20).join(', ')}
                  {check.objects.length > 20 ? ` and ${check.objects.length - 20} more` : ''}
                </div>
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
