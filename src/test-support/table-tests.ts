/** Small helpers the table endpoint tests share. */
import { isTongbuError, type TongbuError } from '../core/errors.js';

/** Every item of a batched async iterable, in order. */
export async function collect<T>(it: AsyncIterable<T[]>): Promise<T[]> {
  const out: T[] = [];
  for await (const batch of it) out.push(...batch);
  return out;
}

/** The TongbuError a promise rejects with; fails the test when it resolves or throws something else. */
export async function failure(p: Promise<unknown>): Promise<TongbuError> {
  try {
    await p;
  } catch (err) {
    if (isTongbuError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}
