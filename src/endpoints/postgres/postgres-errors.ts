/**
 * pg errors → TongbuError. Connection problems name host:port, bad
 * credentials the user, a missing database its name; server errors keep
 * the server's message (which names the column or value) under a code
 * chosen from the SQLSTATE class. Messages never carry the password: pg and
 * the server never put it in theirs, and we add only host, port, user,
 * database and the redacted URL.
 */
import { TongbuError, type ErrorCode } from '../../core/errors.js';
import { NETWORK_ERROR_CODES, type ConnectionContext } from '../table/connection-context.js';

export type ErrorContext = ConnectionContext;

const NETWORK_CODES: ReadonlySet<string> = NETWORK_ERROR_CODES;

/** pg's own messages when the socket fails or the connect times out. */
const NETWORK_MESSAGES = /connection terminated|connection timeout|timeout expired|not queryable/i;

/** SQLSTATEs with a code of their own; the rest go by class (first two characters). */
const SQLSTATE_CODES: Record<string, ErrorCode> = {
  '57014': 'ABORTED',
  '42501': 'PERMISSION_DENIED',
  '42P01': 'NOT_FOUND',
  '42P07': 'CONFLICT',
  '23505': 'CONFLICT',
  '23503': 'CONFLICT',
  '40001': 'UNAVAILABLE',
  '40P01': 'UNAVAILABLE',
  '55P03': 'UNAVAILABLE',
  '53100': 'NO_SPACE',
  '54000': 'TOO_LARGE',
  '57P01': 'CONNECTION_FAILED',
  '57P02': 'CONNECTION_FAILED',
  '57P03': 'CONNECTION_FAILED',
};

const CLASS_CODES: Record<string, ErrorCode> = {
  '08': 'CONNECTION_FAILED',
  '22': 'BAD_ARGUMENT',
  '23': 'BAD_ARGUMENT',
  '42': 'BAD_ARGUMENT',
  '53': 'UNAVAILABLE',
};

interface PgErrorShape {
  code?: string;
  message?: string;
  errors?: unknown[];
}

function isSqlState(code: string | undefined): code is string {
  return code !== undefined && /^[0-9A-Z]{5}$/.test(code);
}

export function pgError(err: unknown, ctx: ErrorContext, action: string): TongbuError {
  if (err instanceof TongbuError) return err;
  const e = (err ?? {}) as PgErrorShape;
  // Node reports a refused multi-address connect as an AggregateError.
  const inner = (e.errors?.[0] ?? {}) as PgErrorShape;
  const code = e.code ?? inner.code;
  const server =
    e.message !== undefined && e.message !== '' ? e.message : (inner.message ?? String(err));
  const where = `${ctx.host}:${ctx.port}`;
  const make = (c: ErrorCode, message: string, data: Record<string, unknown> = {}): TongbuError =>
    new TongbuError(c, message, {
      cause: err,
      data: { url: ctx.display, ...(isSqlState(code) ? { sqlstate: code } : {}), ...data },
    });

  if (
    (code !== undefined && NETWORK_CODES.has(code)) ||
    (!isSqlState(code) && NETWORK_MESSAGES.test(server))
  ) {
    return make('CONNECTION_FAILED', `cannot reach PostgreSQL at ${where}: ${code ?? server}`, {
      host: ctx.host,
      port: ctx.port,
    });
  }
  if (
    code === '28P01' ||
    code === '28000' ||
    /client password must be a string|SASL/i.test(server)
  ) {
    return make('UNAUTHORIZED', `PostgreSQL at ${where} refused user "${ctx.user}": ${server}`, {
      user: ctx.user,
    });
  }
  if (code === '3D000') {
    return make('NOT_FOUND', `PostgreSQL at ${where} has no database "${ctx.database}"`, {
      database: ctx.database,
    });
  }
  if (isSqlState(code)) {
    const c = SQLSTATE_CODES[code] ?? CLASS_CODES[code.slice(0, 2)] ?? 'INTERNAL';
    if (c === 'CONNECTION_FAILED') return make(c, `PostgreSQL at ${where}: ${server}`);
    if (c === 'ABORTED') return make(c, `${action}: cancelled`);
    return make(c, `${action}: ${server}`);
  }
  return make('INTERNAL', `${action}: ${server}`);
}
