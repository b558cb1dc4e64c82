/** Loads the catalog SQL kept next to this module in `sql/`, once per file. */
import { readFileSync } from 'node:fs';

const cache = new Map<string, string>();

/** The text of `sql/<name>` (e.g. `tables.sql`), read on first use and cached. */
export function loadSql(name: string): string {
  let text = cache.get(name);
  if (text === undefined) {
    text = readFileSync(new URL(`./sql/${name}`, import.meta.url), 'utf8');
    cache.set(name, text);
  }
  return text;
}
