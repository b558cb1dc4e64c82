/** Validates caller input with a zod schema; a failure becomes INVALID_ARGUMENT naming each wrong field. */
import type { z } from 'zod';
import { FerryError } from '../core/errors.js';

export interface FieldProblem {
  path: string;
  message: string;
}

export function parseInput<S extends z.ZodType>(schema: S, input: unknown, where = ''): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const fields: FieldProblem[] = result.error.issues.map((issue) => ({
    path: [where, ...issue.path.map(String)].filter((p) => p !== '').join('.') || '(body)',
    message: issue.message,
  }));
  throw new FerryError('INVALID_ARGUMENT', fields.map((f) => `${f.path}: ${f.message}`).join('; '), { details: { fields } });
}
