/** How `ferry jobs validate` and `ferry jobs validations` print a validation. */
import type { ValidationView } from '../service/inputs.js';

type TableView = ValidationView['tables'][number];
type Difference = TableView['differences'][number];

const STATE_WORDS: Record<TableView['state'], string> = {
  PENDING: 'pending',
  RUNNING: 'running',
  EQUAL: 'equal',
  DIFFERENT: 'DIFFERENT',
  ERROR: 'ERROR',
};

const values = (record: Record<string, string | null> | null) =>
  record === null ? '(none)' : Object.entries(record).map(([k, v]) => `${k}=${v === null ? 'NULL' : JSON.stringify(v)}`).join(', ');

function differenceLines(d: Difference): string[] {
  const key = d.key === null ? 'row (no primary key)' : `key ${values(d.key)}`;
  const what = { missing: 'missing on the destination', extra: 'only on the destination', changed: 'values differ' }[d.kind];
  const lines = [`    ${key}: ${what}`];
  if (d.kind === 'changed' && d.source !== null && d.destination !== null) {
    const changed = Object.keys(d.source).filter((c) => d.source?.[c] !== d.destination?.[c]);
    for (const c of changed) lines.push(`      ${c}: source ${d.source[c] === null ? 'NULL' : JSON.stringify(d.source[c])}, destination ${d.destination[c] === null ? 'NULL' : JSON.stringify(d.destination[c])}`);
  } else {
    lines.push(`      ${d.kind === 'extra' ? 'destination' : 'source'}: ${values(d.kind === 'extra' ? d.destination : d.source)}`);
  }
  return lines;
}

/** One line per table (rows on both sides, checksums equal or not), then each differing row. */
export function renderValidation(v: ValidationView): string {
  const s = v.summary;
  const head =
    v.status === 'RUNNING'
      ? `Validation ${v.id} of job ${v.jobId}: running (${s.tablesEqual + s.tablesDifferent + s.tablesFailed} of ${s.tables} tables done)`
      : v.status === 'FAILED'
        ? `Validation ${v.id} of job ${v.jobId}: FAILED: ${v.error?.message ?? ''}`
        : v.clean === true
          ? `Validation ${v.id} of job ${v.jobId}: clean, all ${s.tables} tables equal (${s.rowsCompared} rows compared)`
          : `Validation ${v.id} of job ${v.jobId}: NOT clean: ${s.tablesDifferent} table(s) differ, ${s.tablesFailed} could not be compared, ${s.tablesEqual} equal`;
  const lines = [head];
  if (v.recheckedInFlight) lines.push('Run during the incremental load: differing rows were read again once the load had applied the source\'s changes.');
  const width = Math.max(5, ...v.tables.map((t) => t.table.length));
  if (v.tables.length > 0) lines.push('', `${'TABLE'.padEnd(width)}  ${'STATE'.padEnd(9)}  ${'SOURCE ROWS'.padStart(11)}  ${'DEST ROWS'.padStart(11)}  CHECKSUM`);
  for (const t of v.tables) {
    const checksum = t.sourceChecksum === null || t.destinationChecksum === null ? '-' : t.sourceChecksum === t.destinationChecksum ? 'equal' : 'differs';
    lines.push(`${t.table.padEnd(width)}  ${STATE_WORDS[t.state].padEnd(9)}  ${String(t.sourceRows).padStart(11)}  ${String(t.destinationRows).padStart(11)}  ${checksum}`);
    if (t.destinationTable !== t.table) lines.push(`  destination table: ${t.destinationTable}`);
    if (t.message !== null) lines.push(`  ${t.message}`);
    for (const d of t.differences) lines.push(...differenceLines(d));
    if (t.differencesTruncated) lines.push('    (more rows differ than are listed)');
  }
  return lines.join('\n');
}

/** The list of `ferry jobs validations ID`: one line per validation, newest first. */
export function renderValidationList(list: ValidationView[]): string {
  if (list.length === 0) return 'No validations. Run one with: ferry jobs validate ID';
  return list
    .map((v) => `${v.id}  ${v.createTime}  ${v.status === 'SUCCEEDED' ? (v.clean === true ? 'clean' : 'NOT clean') : v.status}  ${v.summary.tablesEqual}/${v.summary.tables} tables equal`)
    .join('\n');
}
