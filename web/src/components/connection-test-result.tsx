import type { ConnectionTest } from '../api/types';
import { Alert } from './alert';
import { CheckList } from './check-list';

/** What Test connection found: the server version, settings and privileges that matter, problems. */
export function ConnectionTestResult({ result }: { result: ConnectionTest }) {
  const settings = Object.entries(result.settings);
  const privileges = Object.entries(result.privileges);
  return (
    <div className="connection-test" data-testid="connection-test" data-ok={result.ok}>
      {result.ok ? (
        <Alert tone="success" title="Connection succeeded">
          {result.serverVersion ?? 'Connected.'}
        </Alert>
      ) : (
        <Alert tone="error" title="Connection failed">
          {result.error ? `${result.error.code}: ${result.error.message}` : 'A check failed: see below.'}
        </Alert>
      )}
      {(settings.length > 0 || privileges.length > 0) && (
        <div className="two-columns">
          {settings.length > 0 && (
            <dl className="fields compact">
              {settings.map(([name, value]) => (
                <div key={name}>
                  <dt>{name}</dt>
                  <dd>{value}</dd>
                </div>
              ))}
            </dl>
          )}
          {privileges.length > 0 && (
            <dl className="fields compact">
              {privileges.map(([name, granted]) => (
                <div key={name}>
                  <dt>{name}</dt>
                  <dd>{granted ? 'yes' : 'no'}</dd>
                </div>
              ))}
            </dl>
          )}
        </div>
      )}
      {result.checks.length > 0 && <CheckList checks={result.checks} />}
    </div>
  );
}
