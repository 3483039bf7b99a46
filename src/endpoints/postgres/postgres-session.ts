/**
 * Sessions on one PostgreSQL server: a small pool for reads plus dedicated
 * clients for writers. Every session starts with the settings our SQL
 * relies on, sent in the startup packet (no extra round trip): TimeZone UTC
 * (timestamptz prints as UTC `+00`), DateStyle ISO (`YYYY-MM-DD
 * HH:MM:SS.ffffff`), extra_float_digits 1 (shortest round-trip floats),
 * standard_conforming_strings (backslashes in literals are literal), and
 * jit off. Needs PostgreSQL 13 or later (trim_scale); native checksums 14.
 * Queries here return raw text: no pg type parsing at all.
 */
import { userInfo } from 'node:os';
import pg from 'pg';
import type { TableUrl } from '../table/table-url.js';
import { TongbuError } from '../../core/errors.js';
import { pgError, type ErrorContext } from './postgres-errors.js';

export type Queryable = Pick<pg.ClientBase, 'query'>;
export type RawRow = (string | null)[];

const SESSION_OPTIONS = [
  '-c TimeZone=UTC',
  '-c DateStyle=ISO,YMD',
  '-c extra_float_digits=1',
  '-c standard_conforming_strings=on',
  '-c client_encoding=UTF8',
  // JIT compiles the long checksum expressions for seconds and gains nothing on our reads.
  '-c jit=off',
].join(' ');

const RAW_TYPES: pg.CustomTypesConfig = {
  getTypeParser: (() => (value: string) => value) as pg.CustomTypesConfig['getTypeParser'],
};

export interface Connection {
  readonly config: pg.ClientConfig;
  readonly ctx: ErrorContext;
}

export function connectionFor(url: TableUrl): Connection {
  const host = url.host ?? process.env['PGHOST'] ?? '127.0.0.1';
  const port = url.port ?? (Number(process.env['PGPORT']) || 5432);
  const user = url.user ?? process.env['PGUSER'] ?? userInfo().username;
  const database = url.database ?? process.env['PGDATABASE'] ?? user;
  const password = url.password ?? process.env['PGPASSWORD'];
  const config: pg.ClientConfig = {
    host,
    port,
    user,
    database,
    ...(password !== undefined ? { password } : {}),
    options: SESSION_OPTIONS,
    application_name: 'tongbu',
    connectionTimeoutMillis: 15_000,
    keepAlive: true,
  };
  return { config, ctx: { host, port, user, database, display: url.display } };
}

export function createPool(conn: Connection, max = 3): pg.Pool {
  const pool = new pg.Pool({ ...conn.config, max, idleTimeoutMillis: 30_000 });
  // An idle client that dies is dropped by the pool; the next query reports.
  pool.on('error', () => undefined);
  return pool;
}

/** A client outside the pool (a writer's transaction). */
export async function connectClient(conn: Connection): Promise<pg.Client> {
  const client = new pg.Client(conn.config);
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    throw pgError(err, conn.ctx, `cannot connect to ${conn.ctx.display}`);
  }
  return client;
}

/** Runs a query; rows as arrays of raw text. */
export async function rawQuery(
  q: Queryable,
  conn: Connection,
  text: string,
  values?: readonly unknown[],
): Promise<RawRow[]> {
  try {
    const result = await q.query<RawRow>({
      text,
      ...(values !== undefined ? { values: [...values] } : {}),
      rowMode: 'array',
      types: RAW_TYPES,
    });
    return result.rows;
  } catch (err) {
    throw pgError(err, conn.ctx, `${conn.ctx.display}`);
  }
}

/** Runs a query on a pooled client that `signal` can cancel on the server. */
export async function cancellableQuery(
  pool: pg.Pool,
  conn: Connection,
  text: string,
  signal?: AbortSignal,
): Promise<RawRow[]> {
  checkAborted(conn, signal);
  const client = await connectPooled(pool, conn);
  const onAbort = (): void => void cancelBackend(conn, backendPid(client));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const rows = await rawQuery(client, conn, text);
    checkAborted(conn, signal);
    return rows;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    client.release();
  }
}

/** ABORTED once `signal` has fired. */
export function checkAborted(conn: Connection, signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new TongbuError('ABORTED', `${conn.ctx.display}: cancelled`);
}

export async function connectPooled(pool: pg.Pool, conn: Connection): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (err) {
    throw pgError(err, conn.ctx, `cannot connect to ${conn.ctx.display}`);
  }
}

export function backendPid(client: pg.ClientBase): number {
  return (client as unknown as { processID: number }).processID;
}

/** Asks the server to cancel the statement running on backend `pid`. */
export async function cancelBackend(conn: Connection, pid: number): Promise<void> {
  const client = new pg.Client(conn.config);
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT pg_cancel_backend($1)', [pid]);
  } catch {
    // Best effort: the statement finishes on its own otherwise.
  } finally {
    await client.end().catch(() => undefined);
  }
}
