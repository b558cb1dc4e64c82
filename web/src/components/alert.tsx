import type { ReactNode } from 'react';
import { errorMessage } from '../api/client';

/** A message box; role=alert for errors so that screen readers announce them. */
export function Alert({ tone, title, children }: { tone: 'error' | 'warning' | 'info' | 'success'; title?: string; children: ReactNode }) {
  return (
    <div className={`alert alert-${tone}`} role={tone === 'error' ? 'alert' : 'status'}>
      {title && <strong className="alert-title">{title}</strong>}
      <div>{children}</div>
    </div>
  );
}

/** The error of a failed call, with the API's code and message, or nothing. */
export function ErrorAlert({ error, title }: { error: unknown; title?: string }) {
  if (error === null || error === undefined) return null;
  return (
    <Alert tone="error" title={title}>
      {errorMessage(error)}
    </Alert>
  );
}
