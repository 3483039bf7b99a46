/** Validates options against a component's zod schema; the first problem names its flag. */
import type { z } from 'zod/v3';
import { TongbuError } from '../core/errors.js';

export function parseOptions<S extends z.AnyZodObject>(
  schema: S,
  input: Record<string, unknown>,
): Readonly<z.output<S>> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const flag = String(issue.path[0] ?? '').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const message =
      issue.code === 'invalid_type' && issue.received === 'undefined'
        ? 'is required'
        : issue.message;
    throw new TongbuError('BAD_ARGUMENT', `--${flag}: ${message}`);
  }
  return Object.freeze(result.data as z.output<S>);
}
