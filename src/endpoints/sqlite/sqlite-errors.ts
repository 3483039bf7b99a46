/**
 * better-sqlite3 errors → TongbuError, by SQLite result code. `what` names
 * the database file or table URL the error is about.
 */
import { TongbuError, type ErrorCode } from '../../core/errors.js';

const BY_PREFIX: readonly (readonly [string, ErrorCode, string?])[] = [
  ['SQLITE_BUSY', 'UNAVAILABLE', 'the database is locked by another writer'],
  ['SQLITE_LOCKED', 'UNAVAILABLE', 'the database is locked'],
  ['SQLITE_NOTADB', 'BAD_ARGUMENT', 'not a SQLite database'],
  ['SQLITE_CORRUPT', 'IO', 'the database file is corrupt'],
  ['SQLITE_READONLY', 'PERMISSION_DENIED', 'the database is read-only'],
  ['SQLITE_PERM', 'PERMISSION_DENIED'],
  ['SQLITE_AUTH', 'PERMISSION_DENIED'],
  ['SQLITE_CANTOPEN', 'NOT_FOUND', 'cannot open the database file'],
  ['SQLITE_FULL', 'NO_SPACE', 'no space left on device'],
  ['SQLITE_IOERR', 'IO'],
  ['SQLITE_TOOBIG', 'TOO_LARGE'],
  ['SQLITE_CONSTRAINT', 'BAD_ARGUMENT'],
  ['SQLITE_MISMATCH', 'BAD_ARGUMENT'],
  ['SQLITE_RANGE', 'BAD_ARGUMENT'],
  ['SQLITE_ERROR', 'BAD_ARGUMENT'],
];

export function sqliteError(err: unknown, what: string): TongbuError {
  if (err instanceof TongbuError) return err;
  const code = (err as { code?: unknown } | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code === 'string') {
    const hit = BY_PREFIX.find(([prefix]) => code.startsWith(prefix));
    if (hit !== undefined) {
      const [, tongbuCode, words] = hit;
      const text = words === undefined || words === message ? message : `${words} (${message})`;
      return new TongbuError(tongbuCode, `${what}: ${text}`, {
        data: { sqlite: code },
        cause: err,
        // A corrupt file stays corrupt: not worth a retry.
        ...(code.startsWith('SQLITE_CORRUPT') ? { retryable: false } : {}),
      });
    }
  }
  // Binding errors (a bigint beyond 64 bits, a value of no SQLite type).
  if (err instanceof RangeError || err instanceof TypeError) {
    return new TongbuError('BAD_ARGUMENT', `${what}: ${message}`, { cause: err });
  }
  return new TongbuError('INTERNAL', `${what}: ${message}`, { cause: err });
}
