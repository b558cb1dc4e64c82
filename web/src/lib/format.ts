/** How the console writes numbers, sizes, times and names. */
import type { ConnectivityMethod, EngineKind, JobObjectState, JobType, NodeState } from '../api/types';

const ENGINE_NAMES: Record<EngineKind, string> = { postgresql: 'PostgreSQL', mysql: 'MySQL' };
const TYPE_NAMES: Record<JobType, string> = { 'one-time': 'One-time', continuous: 'Continuous' };
const CONNECTIVITY_NAMES: Record<ConnectivityMethod, string> = { direct: 'Direct', 'ssh-tunnel': 'SSH tunnel' };
const OBJECT_STATE_NAMES: Record<JobObjectState, string> = {
  NOT_STARTED: 'Not started',
  DUMPING: 'Dumping',
  DUMPED: 'Dumped',
  REPLICATING: 'Replicating',
  FAILED: 'Failed',
  COMPLETED: 'Completed',
  ERROR: 'Error (changes parked)',
};

const NODE_STATE_NAMES: Record<NodeState, string> = {
  UP: 'Up',
  LOST: 'Lost',
  STOPPED: 'Stopped',
  DRAINING: 'Draining',
  DRAINED: 'Drained',
};

export const engineName = (engine: EngineKind) => ENGINE_NAMES[engine] ?? engine;
export const typeName = (type: JobType) => TYPE_NAMES[type] ?? type;
export const connectivityName = (method: ConnectivityMethod) => CONNECTIVITY_NAMES[method] ?? method;
export const objectStateName = (state: JobObjectState) => OBJECT_STATE_NAMES[state] ?? state;
export const nodeStateName = (state: NodeState) => NODE_STATE_NAMES[state] ?? state;

export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

/** 42 s, 3 min 5 s, 2 h 7 min, 3 d 4 h. */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** A time in the browser's time zone, e.g. "2026-05-04 13:02:11". */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function formatClock(millis: number): string {
  const date = new Date(millis);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

export function formatRate(perSecond: number, unit: string): string {
  if (perSecond >= 100) return `${formatCount(perSecond)} ${unit}/s`;
  return `${perSecond.toFixed(1)} ${unit}/s`;
}
