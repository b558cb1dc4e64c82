/**
 * Which tables a job migrates: all (the default), or include / exclude lists of schemas
 * and tables. Patterns are "schema" (every table in it) or "schema.table"; "*" matches any
 * run of characters.
 */
export interface ObjectSelection {
  include: string[];
  exclude: string[];
}

export const SELECT_ALL: ObjectSelection = { include: [], exclude: [] };

function patternToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

function matches(pattern: string, schema: string, table: string): boolean {
  if (!pattern.includes('.')) return patternToRegExp(pattern).test(schema);
  const dot = pattern.indexOf('.');
  return patternToRegExp(pattern.slice(0, dot)).test(schema) && patternToRegExp(pattern.slice(dot + 1)).test(table);
}

/** True when the table belongs to the selection: included (or no include list) and not excluded. */
export function isTableSelected(selection: ObjectSelection, schema: string, table: string): boolean {
  const included = selection.include.length === 0 || selection.include.some((p) => matches(p, schema, table));
  return included && !selection.exclude.some((p) => matches(p, schema, table));
}

/** Problems with patterns, as messages; empty when every pattern is well formed. */
export function validateSelection(selection: ObjectSelection): string[] {
  const problems: string[] = [];
  for (const pattern of [...selection.include, ...selection.exclude]) {
    if (pattern.trim() === '') problems.push('an empty pattern; use "schema" or "schema.table"');
    else if (pattern.split('.').length > 2) problems.push(`"${pattern}" has more than one dot; use "schema" or "schema.table"`);
  }
  return problems;
}
