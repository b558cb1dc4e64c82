import { useEffect, useRef } from 'react';
import type { Confirmation } from '../lib/job-actions';

/** A modal that says what an action will do before it is done. Escape cancels. */
export function ConfirmDialog({
  confirmation,
  busy,
  onConfirm,
  onCancel,
}: {
  confirmation: Confirmation;
  busy: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const cancelRef = useRef<HTMLButtonElement>(null);
  const onCancelRef = useRef(onCancel);
  onCancelRef.current = onCancel;
  // Once, when shown: the page behind re-renders every poll and must not steal the focus back.
  useEffect(() => {
    cancelRef.current?.focus();
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Escape') onCancelRef.current();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  return (
    <div className="modal-backdrop">
      <div className="modal" role="dialog" aria-modal="true" aria-labelledby="confirm-title">
        <h2 id="confirm-title">{confirmation.title}</h2>
        {confirmation.paragraphs.map((text) => (
          <p key={text}>{text}</p>
        ))}
        {confirmation.warning && (
          <div className="alert alert-warning" role="alert" data-testid="confirm-warning">
            {confirmation.warning}
          </div>
        )}
        <div className="modal-buttons">
          <button type="button" ref={cancelRef} onClick={onCancel} disabled={busy}>
            Cancel
          </button>
          <button type="button" className={confirmation.danger ? 'danger' : 'primary'} onClick={onConfirm} disabled={busy} data-confirm>
            {busy ? 'Working…' : confirmation.confirmLabel}
          </button>
        </div>
      </div>
    </div>
  );
}
