/**
 * Loads data now and again every `intervalMs` while the component is shown: the console's
 * live refresh. One request at a time; a slow answer delays the next one instead of piling up.
 * An answer equal to the last one keeps the last one's objects (shareUnchanged), so an
 * unchanged poll renders nothing.
 */
import { useCallback, useEffect, useRef, useState } from 'react';
import { shareUnchanged } from './share-unchanged';

export interface Polled<T> {
  data: T | undefined;
  /** The last load's error, cleared by the next success. */
  error: unknown;
  /** Loads again now (after an action); resumes a paused poll. */
  reload: () => void;
  /** Stops polling and aborts the request in flight (before deleting what is polled). */
  pause: () => void;
}

export function usePolling<T>(load: (signal: AbortSignal) => Promise<T>, intervalMs: number, deps: readonly unknown[]): Polled<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(null);
  const loadRef = useRef(load);
  loadRef.current = load;
  const controls = useRef({ wake: () => undefined as void, pause: () => undefined as void });

  useEffect(() => {
    let unmounted = false;
    let paused = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let controller: AbortController | null = null;
    let again = false;

    const tick = async () => {
      if (unmounted || paused) return;
      if (controller) {
        again = true;
        return;
      }
      clearTimeout(timer);
      const current = new AbortController();
      controller = current;
      try {
        const value: T = await loadRef.current(current.signal);
        if (!unmounted && !current.signal.aborted) {
          setData((previous) => (previous === undefined ? value : shareUnchanged<T>(previous, value)));
          setError(null);
        }
      } catch (caught) {
        if (!unmounted && !current.signal.aborted) setError(caught);
      } finally {
        controller = null;
      }
      if (unmounted || paused) return;
      if (again) {
        again = false;
        void tick();
        return;
      }
      timer = setTimeout(() => void tick(), intervalMs);
    };

    controls.current = {
      wake: () => {
        paused = false;
        void tick();
      },
      pause: () => {
        paused = true;
        again = false;
        clearTimeout(timer);
        controller?.abort();
      },
    };
    setData(undefined);
    setError(null);
    void tick();
    return () => {
      unmounted = true;
      clearTimeout(timer);
      controller?.abort();
    };
    // The caller's deps decide when the loader means something else (another job id).
  }, [intervalMs, ...deps]);

  const reload = useCallback(() => controls.current.wake(), []);
  const pause = useCallback(() => controls.current.pause(), []);
  return { data, error, reload, pause };
}
