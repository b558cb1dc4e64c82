/**
 * What the CLI prints: humanized numbers, tables, progress bars, and the text views of
 * profiles, jobs, tests and verify reports. Pure functions of the API's JSON (no I/O), so
 * they are tested on their own.
 */
import Table from 'cli-table3';
import type {
  ConnectionTestView,
  JobObjectView,
  JobView,
  ProfileView,
  SchemaObjectReportView,
  VerifyReportView,
} from '../service/inputs.js';

type JobEvent = { id: number; time: string; kind: string; message: string; actor: string };

// ---------------------------------------------------------------------------------------
// Numbers, times, bars

const BYTE_UNITS = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** 1536 -> "1.5 KiB"; powers of 1024, one decimal below 100 of a unit. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '-';
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  let value = bytes;
  let unit: string = 'B';
  for (const next of BYTE_UNITS) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return `${value < 100 ? value.toFixed(1) : Math.round(value).toString()} ${unit}`;
}

/** 1234567 -> "1,234,567". */
export function formatCount(count: number): string {
  if (!Number.isFinite(count)) return '-';
  return Math.round(count).toLocaleString('en-US');
}

/** Seconds as a short duration: "42s", "3m 05s", "2h 03m", "1d 04h". */
export function formatDuration(totalSeconds: number): string {
  if (!Number.isFinite(totalSeconds) || totalSeconds < 0) return '-';
  const seconds = Math.floor(totalSeconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${pad(seconds % 60)}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${pad(Math.floor((seconds % 3600) / 60))}m`;
  return `${Math.floor(seconds / 86400)}d ${pad(Math.floor((seconds % 86400) / 3600))}h`;
}

/** An ISO time as "2024-05-01 12:00:03 UTC"; "-" when absent. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return '-';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** Bytes per second as "12.3 MiB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** A fraction (0..1) as "42%"; clamps; "99%" until truly done so a bar never lies about 100%. */
export function formatPercent(fraction: number): string {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const percent = clamped >= 1 ? 100 : Math.min(99, Math.floor(clamped * 100));
  return `${percent}%`;
}

/** A bar of `width` cells: "█████░░░░░" (or "#####-----" with ascii). */
export function progressBar(fraction: number, width = 20, ascii = false): string {
  const clamped = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const filled = Math.round(clamped * width);
  const [full, empty] = ascii ? ['#', '-'] : ['█', '░'];
  return full.repeat(filled) + empty.repeat(width - filled);
}

// ---------------------------------------------------------------------------------------
// Tables and field lists

/** A borderless table with an upper-case header row, aligned with two spaces (kubectl-like). */
export function renderTable(head: string[], rows: (string | number)[][]): string {
  const table = new Table({
    head: head.map((h) => h.toUpperCase()),
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
      bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '',
      right: '', 'right-mid': '', middle: '  ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const row of rows) table.push(row.map(String));
  return table
    .toString()
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n');
}

/** "Label:  value" lines, labels padded to one column; multi-line values are indented. */
export function renderFields(fields: [label: string, value: string][], indent = ''): string {
  const width = Math.max(0, ...fields.map(([label]) => label.length)) + 2;
  return fields
    .map(([label, value]) => {
      const [first, ...rest] = value.split('\n');
      const lines = [`${indent}${`${label}:`.padEnd(width)}${first ?? ''}`];
      for (const line of rest) lines.push(`${indent}${' '.repeat(width)}${line}`);
      return lines.join('\n');
    })
    .join('\n');
}

function labelsText(labels: Record<string, string>): string {
  const entries = Object.entries(labels);
  return entries.length === 0 ? '-' : entries.map(([k, v]) => `${k}=${v}`).join(', ');
}

// ---------------------------------------------------------------------------------------
// Connection profiles

export function renderProfilesTable(profiles: ProfileView[]): string {
  if (profiles.length === 0) return 'No connection profiles. Create one with `ferry profiles create`.';
  return renderTable(
    ['id', 'name', 'engine', 'endpoint', 'database', 'user', 'tls', 'created'],
    profiles.map((p) => [p.id, p.displayName, p.engine, `${p.host}:${p.port}`, p.database ?? '-', p.username, p.tls.mode, formatTime(p.createTime)]),
  );
}

export function renderProfileDetails(profile: ProfileView): string {
  return renderFields([
    ['ID', profile.id],
    ['Display name', profile.displayName],
    ['Engine', profile.engine],
    ['Host', profile.host],
    ['Port', String(profile.port)],
    ['Database', profile.database ?? '-'],
    ['Username', profile.username],
    ['Password', profile.passwordSet ? 'set' : 'not set'],
    [
      'TLS',
      `${profile.tls.mode}${profile.tls.caCertificateSet ? ', CA certificate set' : ''}${profile.tls.clientCertificateSet ? ', client certificate set' : ''}`,
    ],
    [
      'Connectivity',
      profile.sshTunnel === null
        ? profile.connectivityMethod
        : `${profile.connectivityMethod} via ${profile.sshTunnel.username}@${profile.sshTunnel.host}:${profile.sshTunnel.port} (private key ${profile.sshTunnel.privateKeySet ? 'set' : 'not set'}, host key ${profile.sshTunnel.hostKeyFingerprint ?? 'recorded at first connection'})`,
    ],
    ['Labels', labelsText(profile.labels)],
    ['Created', formatTime(profile.createTime)],
    ['Updated', formatTime(profile.updateTime)],
  ]);
}

const SEVERITY_MARK = { ok: 'ok', warning: 'WARNING', error: 'ERROR' } as const;

/** Longest message shown whole in a table cell; longer ones get a short form there and a block below. */
const CHECK_CELL_WIDTH = 110;
/** Objects named in a table cell; a check with more lists them indented below the table. */
const CHECK_CELL_OBJECTS = 5;
/** Objects listed below the table; the rest are counted (`-o json` has them all). */
const CHECK_LISTED_OBJECTS = 50;

function renderChecks(checks: VerifyReportView['checks']): string {
  const long = (c: VerifyReportView['checks'][number]) => c.message.length > CHECK_CELL_WIDTH || (c.objects?.length ?? 0) > CHECK_CELL_OBJECTS;
  const table = renderTable(
    ['result', 'side', 'check', 'message'],
    checks.map((c) => [
      SEVERITY_MARK[c.severity],
      c.side,
      c.code,
      long(c) ? (c.severity === 'ok' ? firstSentence(c.message) : `${firstSentence(c.message)} (details below)`) : c.objects && c.objects.length > 0 ? `${c.message} (${c.objects.join(', ')})` : c.message,
    ]),
  );
  // Passed checks keep their short form; what needs reading is a warning or an error.
  const details = checks.filter((c) => long(c) && c.severity !== 'ok').map((c) => {
    const lines = [`${SEVERITY_MARK[c.severity]} ${c.side} ${c.code}`, ...wrapText(c.message, 100).map((line) => `    ${line}`)];
    const objects = c.objects ?? [];
    if (objects.length > 0) {
      lines.push(`    ${objects.length} object${objects.length === 1 ? '' : 's'}:`);
      for (const o of objects.slice(0, CHECK_LISTED_OBJECTS)) lines.push(`      ${o}`);
      if (objects.length > CHECK_LISTED_OBJECTS) lines.push(`      ... and ${objects.length - CHECK_LISTED_OBJECTS} more (-o json lists them all)`);
    }
    return lines.join('\n');
  });
  return details.length === 0 ? table : `${table}\n\n${details.join('\n\n')}`;
}

/** The message's first sentence, cut to the cell width. */
function firstSentence(message: string): string {
  const end = message.search(/[.:;](\s|$)/);
  const sentence = end > 0 ? message.slice(0, end) : message;
  return sentence.length > CHECK_CELL_WIDTH - 20 ? `${sentence.slice(0, CHECK_CELL_WIDTH - 21)}…` : sentence;
}

/** Words wrapped at `width` characters (a longer word gets a line of its own). */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

export function renderConnectionTest(result: ConnectionTestView): string {
  const parts = [
    renderFields([
      ['Result', result.ok ? 'Connected' : 'FAILED'],
      // The connection error itself goes to stderr once, as every CLI error does.
      ['Server version', result.serverVersion ?? '-'],
    ]),
  ];
  const settings = Object.entries(result.settings);
  if (settings.length > 0) parts.push(`Settings\n${renderTable(['setting', 'value'], settings)}`);
  const privileges = Object.entries(result.privileges);
  if (privileges.length > 0) parts.push(`Privileges\n${renderTable(['privilege', 'granted'], privileges.map(([k, v]) => [k, v ? 'yes' : 'NO']))}`);
  if (result.checks.length > 0) parts.push(`Checks\n${renderChecks(result.checks)}`);
  return parts.join('\n\n');
}

export function renderVerifyReport(report: VerifyReportView): string {
  const errors = report.checks.filter((c) => c.severity === 'error').length;
  const warnings = report.checks.filter((c) => c.severity === 'warning').length;
  const summary = report.ok
    ? `Verification passed${warnings > 0 ? ` with ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}.`
    : `Verification failed: ${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}. Fix the errors before starting the job.`;
  return report.checks.length > 0 ? `${renderChecks(report.checks)}\n\n${summary}` : summary;
}

// ---------------------------------------------------------------------------------------
// Migration jobs

/** "Running (Full dump in progress)", or the status label alone. */
export function statusText(job: Pick<JobView, 'statusLabel' | 'substatus'>): string {
  return job.substatus ? `${job.statusLabel} (${job.substatus})` : job.statusLabel;
}

function schemaMappingText(mapping: JobView['schemaMapping']): string {
  const pairs = Object.entries(mapping);
  if (pairs.length === 0) return 'names kept (verify shows what applies)';
  return pairs.map(([source, destination]) => `${source} -> ${destination}`).join(', ');
}

function selectionText(selection: JobView['selection']): string {
  if (selection.include.length === 0 && selection.exclude.length === 0) return 'all tables';
  const parts: string[] = [];
  parts.push(selection.include.length > 0 ? `include ${selection.include.join(', ')}` : 'all tables');
  if (selection.exclude.length > 0) parts.push(`exclude ${selection.exclude.join(', ')}`);
  return parts.join('; ');
}

function profileText(name: string | null, id: string, engine: string): string {
  return name && name !== id ? `${name} (${id}, ${engine})` : `${id} (${engine})`;
}

export function renderJobsTable(jobs: JobView[]): string {
  if (jobs.length === 0) return 'No migration jobs. Create one with `ferry jobs create`.';
  return renderTable(
    ['id', 'name', 'status', 'substatus', 'type', 'source → destination', 'node', 'created', 'duration'],
    jobs.map((j) => [
      j.id,
      j.displayName,
      j.statusLabel,
      j.substatus ?? '-',
      j.type,
      `${j.sourceProfileName ?? j.sourceProfileId} → ${j.destinationProfileName ?? j.destinationProfileId}`,
      j.node ?? '-',
      formatTime(j.createTime),
      formatDuration(j.durationSeconds),
    ]),
  );
}

/** How far one table is, 0..1: from bytes when estimated, else rows, else its state. */
export function objectFraction(object: JobObjectView): number {
  if (copyFinished(object)) return 1;
  if (object.estimatedBytes > 0) return Math.min(object.bytesCopied / object.estimatedBytes, 0.999);
  if (object.estimatedRows > 0) return Math.min(object.rowsCopied / object.estimatedRows, 0.999);
  return 0;
}

/** The job's overall fraction, from its progress percent. */
function jobFraction(job: JobView): number {
  if (job.status === 'COMPLETED') return 1;
  return job.progress.percent / 100;
}

const OBJECT_STATE_LABELS: Record<JobObjectView['state'], string> = {
  NOT_STARTED: 'not started',
  DUMPING: 'dumping',
  DUMPED: 'dumped',
  REPLICATING: 'replicating',
  FAILED: 'FAILED',
  COMPLETED: 'completed',
  ERROR: 'ERROR (parked)',
};

/** "1,200 / ~5,000" while the total is an estimate; the copied amount alone once it is exact. */
function ofEstimate(copied: number, estimated: number, format: (n: number) => string, exact = false): string {
  return !exact && estimated > 0 ? `${format(copied)} / ~${format(estimated)}` : format(copied);
}

/** A table whose copy is finished: what it copied is its total. */
function copyFinished(object: JobObjectView): boolean {
  return object.state === 'COMPLETED' || object.state === 'DUMPED' || object.state === 'REPLICATING' || object.state === 'ERROR';
}

export interface ObjectsTableOptions {
  /** Width of each bar; 0 leaves the bar out. */
  barWidth?: number;
  ascii?: boolean;
}

/** One row per table: name, state, bar and percent, rows and bytes copied of the estimate. */
export function renderObjectsTable(objects: JobObjectView[], options: ObjectsTableOptions = {}): string {
  if (objects.length === 0) return 'No tables yet (the list appears once the job has read the source schema).';
  const barWidth = options.barWidth ?? 20;
  const rows = objects.map((o) => {
    const fraction = objectFraction(o);
    const progress = barWidth > 0 ? `${progressBar(fraction, barWidth, options.ascii)} ${formatPercent(fraction).padStart(4)}` : formatPercent(fraction);
    return [o.name, OBJECT_STATE_LABELS[o.state], progress, ofEstimate(o.rowsCopied, o.estimatedRows, formatCount, copyFinished(o)), ofEstimate(o.bytesCopied, o.estimatedBytes, formatBytes, copyFinished(o))];
  });
  // The destination's name, when the schema mapping renames any table.
  const renamed = objects.some((o) => o.destination !== o.name);
  if (renamed) rows.forEach((row, i) => row.splice(1, 0, objects[i]?.destination ?? ''));
  const table = renderTable(renamed ? ['table', 'destination', 'state', 'progress', 'rows', 'bytes'] : ['table', 'state', 'progress', 'rows', 'bytes'], rows);
  const failed = objects.filter((o) => o.error !== null);
  if (failed.length === 0) return table;
  return `${table}\n${failed.map((o) => `  ${o.name}: ${o.error!.code}: ${o.error!.message}${parkedText(o)}`).join('\n')}`;
}

/** " [123 changes parked, last retry 12:00:01]" for a parked table, else "". */
function parkedText(o: JobObjectView): string {
  if (o.state !== 'ERROR') return '';
  return ` [${formatCount(o.parkedChanges)} change${o.parkedChanges === 1 ? '' : 's'} parked, last retry ${o.lastRetryTime === null ? '-' : formatTime(o.lastRetryTime)}]`;
}

function errorFields(error: NonNullable<JobView['error']>): [string, string][] {
  const behaviour = error.recoverable
    ? 'recoverable: the job retries by itself once the cause is fixed'
    : error.retryable
      ? 'retryable'
      : Array.isArray(error.details['restartObjects'])
        ? `not recoverable: fix the cause, then restart the failed tables only (--objects ${(error.details['restartObjects'] as string[]).join(',')})`
        : 'not recoverable: fix the cause, then restart the job';
  return [
    ['Code', error.code],
    ['Message', error.message],
    ['Since', formatTime(error.time)],
    ['Recovery', behaviour],
  ];
}

function progressSummary(job: JobView, ascii: boolean): string {
  const p = job.progress;
  const fraction = jobFraction(job);
  return [
    `${progressBar(fraction, 30, ascii)} ${formatPercent(fraction)}`,
    `tables ${p.tablesCompleted} / ${p.tablesTotal}`,
    `rows ${ofEstimate(p.rowsCopied, p.estimatedRows, formatCount, !p.totalsEstimated)}`,
    `bytes ${ofEstimate(p.bytesCopied, p.estimatedBytes, formatBytes, !p.totalsEstimated)}`,
  ].join('  ');
}

/** "lag 1.2 s / 34.5 kB · 1,234 changes/s · 56,789 applied", or null before the incremental load. */
export function replicationSummary(job: JobView): string | null {
  const r = job.replication;
  if (r === null) return null;
  const bytes = r.lagBytes === null ? '?' : formatBytes(r.lagBytes);
  return [
    `lag ${r.lagSeconds.toFixed(1)} s / ${bytes}`,
    `${formatCount(Math.round(r.appliedChangesPerSecond))} changes/s`,
    `${formatCount(r.changesApplied)} applied`,
    `position ${r.appliedPosition ?? '-'} of ${r.sourcePosition ?? '-'}`,
  ].join(' · ');
}

export interface JobDetailsOptions {
  objects?: JobObjectView[];
  events?: JobEvent[];
  ascii?: boolean;
}

/** Every field of a job, its error and what to do, its progress, its tables and recent history. */
export function renderJobDetails(job: JobView, options: JobDetailsOptions = {}): string {
  const ascii = options.ascii ?? false;
  const sections: string[] = [];
  sections.push(
    renderFields([
      ['ID', job.id],
      ['Display name', job.displayName],
      ['Type', job.type],
      ['Status', job.statusLabel],
      ['Substatus', job.substatus ?? '-'],
      ['Available actions', job.availableActions.length > 0 ? job.availableActions.join(', ') : '-'],
      ['Node', job.node ?? '- (no node runs it)'],
      ['Source', profileText(job.sourceProfileName, job.sourceProfileId, job.sourceEngine)],
      ['Destination', profileText(job.destinationProfileName, job.destinationProfileId, job.destinationEngine)],
      ['Connectivity', job.connectivityMethod],
      ['Objects', selectionText(job.selection)],
      ['Schema mapping', schemaMappingText(job.schemaMapping)],
      ['Dump parallelism', String(job.dumpParallelism)],
      ...(job.type === 'continuous' ? ([['Max parked changes', formatCount(job.maxParkedChanges)]] as [string, string][]) : []),
      ['Labels', labelsText(job.labels)],
      ['Created', formatTime(job.createTime)],
      ['Updated', formatTime(job.updateTime)],
      ['Started', formatTime(job.startTime)],
      ['Ended', formatTime(job.endTime)],
      ['Duration', formatDuration(job.durationSeconds)],
    ]),
  );
  if (job.error) sections.push(`Error\n${renderFields(errorFields(job.error), '  ')}`);
  sections.push(`Progress\n  ${progressSummary(job, ascii)}`);
  const replication = replicationSummary(job);
  if (replication !== null) sections.push(`Replication\n  ${replication}`);
  if (options.objects) sections.push(`Tables\n${renderObjectsTable(options.objects, { ascii })}`);
  if (options.events && options.events.length > 0) {
    sections.push(
      `Recent events\n${renderTable(
        ['time', 'actor', 'event'],
        options.events.map((e) => [formatTime(e.time), e.actor, e.message]),
      )}`,
    );
  }
  return sections.join('\n\n');
}

export interface WatchFrameOptions {
  objects: JobObjectView[];
  /** Copy speed measured between the last two polls; null before the second poll. */
  bytesPerSecond?: number | null;
  rowsPerSecond?: number | null;
  ascii?: boolean;
  /** The time of the poll, shown at the bottom. */
  now?: Date;
}

/** One screen of `ferry jobs watch`: status, overall progress and speed, per-table bars. */
export function renderWatchFrame(job: JobView, options: WatchFrameOptions): string {
  const ascii = options.ascii ?? false;
  const speed =
    options.bytesPerSecond != null && options.rowsPerSecond != null
      ? `${formatRate(options.bytesPerSecond)}, ${formatCount(options.rowsPerSecond)} rows/s`
      : '-';
  const lines = [
    `Migration job ${job.id} (${job.displayName}) · ${job.type} · ${job.sourceProfileName ?? job.sourceProfileId} → ${job.destinationProfileName ?? job.destinationProfileId}`,
    renderFields([
      ['Status', statusText(job)],
      ['Elapsed', formatDuration(job.durationSeconds)],
      ['Progress', progressSummary(job, ascii)],
      ['Speed', speed],
      ...(replicationSummary(job) !== null ? ([['Replication', replicationSummary(job) as string]] as [string, string][]) : []),
      ...(job.error ? ([['Error', `${job.error.code}: ${job.error.message}`]] as [string, string][]) : []),
    ]),
    '',
    renderObjectsTable(options.objects, { ascii }),
  ];
  if (options.now) lines.push('', `Updated ${formatTime(options.now.toISOString())}. Ctrl-C stops watching; the job keeps running.`);
  return lines.join('\n');
}

/** The object report: kind, name, disposition, phase, reason (definitions only in --output json). */
export function renderSchemaObjects(objects: SchemaObjectReportView['objects']): string {
  if (objects.length === 0) return 'The source has no views, routines, triggers, events or other objects beyond the selected tables.';
  return renderTable(
    ['kind', 'name', 'disposition', 'phase', 'reason'],
    objects.map((o) => [o.kind, o.schema === null ? o.name : `${o.schema}.${o.name}`, o.disposition, o.phase ?? '-', o.reason ?? '']),
  );
}
