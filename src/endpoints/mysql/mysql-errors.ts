/**
 * mysql2 errors → TongbuError. Connection problems name host:port, bad
 * credentials the user, a missing database its name; server errors on bad
 * values are BAD_ARGUMENT with the server's message (which names the
 * column). Messages never carry the password: mysql2 and the server never
 * put it in theirs, and we only add host, port, user and database.
 */
import { TongbuError, type ErrorCode } from '../../core/errors.js';
import { NETWORK_ERROR_CODES, type ConnectionContext } from '../table/connection-context.js';

export type ErrorContext = ConnectionContext;

const NETWORK_CODES: ReadonlySet<string> = new Set([
  ...NETWORK_ERROR_CODES,
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

/** Server error numbers whose meaning is a bad value or statement. */
const BAD_VALUE_ERRNOS: Record<number, string> = {
  1048: 'a NOT NULL column got NULL',
  1054: 'unknown column',
  1064: 'SQL syntax error',
  1264: 'value out of range',
  1292: 'incorrect value',
  1366: 'incorrect value',
  1406: 'value too long',
  1411: 'incorrect value',
  1690: 'value out of range',
  3140: 'invalid JSON',
  4025: 'constraint failed',
};

interface MysqlErrorShape {
  code?: string;
  errno?: number;
  sqlMessage?: string;
  message?: string;
  fatal?: boolean;
}

export function mysqlError(err: unknown, ctx: ErrorContext, action: string): TongbuError {
  if (err instanceof TongbuError) return err;
  const e = (err ?? {}) as MysqlErrorShape;
  const server = e.sqlMessage ?? e.message ?? String(err);
  const where = `${ctx.host}:${ctx.port}`;
  const make = (code: ErrorCode, message: string, data: Record<string, unknown> = {}) =>
    new TongbuError(code, message, {
      cause: err,
      data: { url: ctx.display, ...(e.errno !== undefined ? { errno: e.errno } : {}), ...data },
    });

  if (e.code !== undefined && NETWORK_CODES.has(e.code)) {
    return make('CONNECTION_FAILED', `cannot reach MySQL/MariaDB at ${where}: ${e.code}`, {
      host: ctx.host,
      port: ctx.port,
    });
  }
  switch (e.errno) {
    case 1045:
    case 1698:
      return make(
        'UNAUTHORIZED',
        `MySQL/MariaDB at ${where} refused user "${ctx.user}": wrong user or password`,
        { user: ctx.user },
      );
    case 1044:
      return make(
        'UNAUTHORIZED',
        `MySQL/MariaDB user "${ctx.user}" may not use database "${ctx.database}"`,
        { user: ctx.user, database: ctx.database },
      );
    case 1049:
      return make('NOT_FOUND', `MySQL/MariaDB at ${where} has no database "${ctx.database}"`, {
        database: ctx.database,
      });
    case 1142:
    case 1143:
      return make('PERMISSION_DENIED', `${action}: ${server}`);
    case 1146:
      return make('NOT_FOUND', `${action}: ${server}`);
    case 1062:
      return make('CONFLICT', `${action}: ${server}`);
    case 1050:
      return make('CONFLICT', `${action}: ${server}`);
    case 1317:
    case 1927:
      return make('ABORTED', `${action}: interrupted`);
    case 1153:
      return make('TOO_LARGE', `${action}: ${server}`);
    case 1205:
    case 1213:
      return new TongbuError('UNAVAILABLE', `${action}: ${server}`, {
        cause: err,
        data: { url: ctx.display, errno: e.errno },
      });
  }
  if (e.errno !== undefined && e.errno in BAD_VALUE_ERRNOS) {
    return make('BAD_ARGUMENT', `${action}: ${server}`);
  }
  if (e.fatal === true) {
    return make('CONNECTION_FAILED', `MySQL/MariaDB at ${where}: ${server}`);
  }
  return make('INTERNAL', `${action}: ${server}`);
}
