/**
 * The create form's Objects picker: the source profile's schemas with their tables as
 * checkboxes, and which tables the include/exclude patterns select, asked of the server
 * (POST /v1/connectionProfiles/{id}:listTables, the job's own matching) a moment after the
 * patterns stop changing.
 *
 * The checkboxes write include entries: a schema box the entry "schema", a table box
 * "schema.table". Unchecking a table of a checked schema replaces "schema" with its other tables.
 */
import { useEffect, useState } from 'react';
import { api } from '../api/client';
import type { SourceTable } from '../api/types';
import { ErrorAlert } from './alert';

/** How long the patterns must stay unchanged before the server is asked. */
const DEBOUNCE_MS = 300;

/** The entries of a pattern list as typed: one per line (or comma). */
export function patterns(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function groupBySchema(tables: SourceTable[]): Map<string, SourceTable[]> {
  const schemas = new Map<string, SourceTable[]>();
  for (const table of tables) schemas.set(table.schema, [...(schemas.get(table.schema) ?? []), table]);
  return schemas;
}

/** The include entries with `schema` checked or unchecked: its own table entries give way to it. */
function toggleSchema(entries: string[], schema: string, tables: SourceTable[], checked: boolean): string[] {
  const own = new Set([schema, ...tables.map((t) => `${schema}.${t.name}`)]);
  const rest = entries.filter((e) => !own.has(e));
  return checked ? [...rest, schema] : rest;
}

/** The include entries with one table checked or unchecked; unchecking it in a checked schema lists the others. */
function toggleTable(entries: string[], table: SourceTable, siblings: SourceTable[], checked: boolean): string[] {
  const entry = `${table.schema}.${table.name}`;
  if (checked) return entries.includes(entry) ? entries : [...entries, entry];
  if (entries.includes(table.schema)) {
    return [...entries.filter((e) => e !== table.schema), ...siblings.filter((t) => t.name !== table.name).map((t) => `${t.schema}.${t.name}`).filter((e) => !entries.includes(e))];
  }
  return entries.filter((e) => e !== entry);
}

export function TablePicker({ profileId, include, exclude, onIncludeChange }: { profileId: string; include: string; exclude: string; onIncludeChange: (text: string) => void }) {
  const [tables, setTables] = useState<SourceTable[] | null>(null);
  /** The patterns `tables` was answered for. */
  const [answeredKey, setAnsweredKey] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [pending, setPending] = useState(true);
  const includeEntries = patterns(include);
  const selection = { include: includeEntries, exclude: patterns(exclude) };
  const key = JSON.stringify(selection);

  useEffect(() => {
    setTables(null);
    setError(null);
  }, [profileId]);

  useEffect(() => {
    const controller = new AbortController();
    setPending(true);
    const timer = setTimeout(() => {
      api
        .listProfileTables(profileId, JSON.parse(key) as typeof selection, controller.signal)
        .then((answer) => {
          setTables(answer);
          setAnsweredKey(key);
          setError(null);
        })
        .catch((caught: unknown) => {
          if (controller.signal.aborted) return;
          // An answer for other patterns (or another profile) would show the wrong matches.
          setTables(null);
          setError(caught);
        })
        .finally(() => {
          if (!controller.signal.aborted) setPending(false);
        });
    }, DEBOUNCE_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [profileId, key]);

  const write = (entries: string[]) => onIncludeChange(entries.join('\n'));
  const selectedCount = tables?.filter((t) => t.selected).length ?? 0;

  return (
    <div className="table-picker" data-testid="table-picker" aria-busy={pending}>
      <h3>Source tables</h3>
      <ErrorAlert error={error} title="Could not list the source's tables" />
      {error !== null && <p className="hint">The include and exclude patterns below still work; the tables show once the source answers.</p>}
      {tables === null && error === null && <p className="muted">Reading the source's tables…</p>}
      {tables !== null && tables.length === 0 && <p className="muted">The source database has no tables.</p>}
      {tables !== null && tables.length > 0 && (
        <>
          <p data-testid="match-count" data-selected={selectedCount} data-total={tables.length} data-current={answeredKey === key} aria-live="polite">
            <strong>
              {selectedCount} of {tables.length} tables
            </strong>{' '}
            {selection.include.length === 0 && selection.exclude.length === 0 ? 'selected: both lists are empty, so every table is migrated.' : 'match the patterns.'}
            {(pending || answeredKey !== key) && <span className="muted"> Updating…</span>}
          </p>
          <ul className="schema-list">
            {[...groupBySchema(tables)].map(([schema, members]) => {
              const schemaChecked = includeEntries.includes(schema);
              return (
                <li key={schema}>
                  <label className="schema-row">
                    <input type="checkbox" aria-label={`Schema ${schema}`} checked={schemaChecked} onChange={(e) => write(toggleSchema(includeEntries, schema, members, e.target.checked))} />{' '}
                    <strong>{schema}</strong> <span className="muted">({members.filter((t) => t.selected).length} of {members.length} selected)</span>
                  </label>
                  <ul className="table-list">
                    {members.map((table) => (
                      <li key={table.name} data-testid="source-table" data-table={`${schema}.${table.name}`} data-selected={table.selected}>
                        <label>
                          <input
                            type="checkbox"
                            aria-label={`Table ${schema}.${table.name}`}
                            checked={schemaChecked || includeEntries.includes(`${schema}.${table.name}`)}
                            onChange={(e) => write(toggleTable(includeEntries, table, members, e.target.checked))}
                          />{' '}
                          {table.name}
                        </label>{' '}
                        <span className="muted">{table.estimatedRows >= 0 ? `~${table.estimatedRows.toLocaleString()} rows` : 'rows unknown'}</span>{' '}
                        <span className={`badge ${table.selected ? 'badge-success' : 'badge-neutral'}`}>{table.selected ? 'selected' : 'not selected'}</span>
                      </li>
                    ))}
                  </ul>
                </li>
              );
            })}
          </ul>
        </>
      )}
    </div>
  );
}
