/**
 * Sessions on one MySQL/MariaDB server: a small pool for reads plus
 * dedicated sessions for writers. Every session runs in UTC (`time_zone
 * '+00:00'`, so TIMESTAMP reads and writes are UTC instants), with a fixed
 * strict `sql_mode` (bad values error instead of being mangled; backslash
 * escapes and `"…"` strings mean what our SQL assumes) and utf8mb4. Values
 * come back as text where a JS number would lose them: BIGINT and DECIMAL
 * as strings, dates as strings, JSON as text.
 */
import mysql, { type Connection, type ConnectionOptions, type QueryError } from 'mysql2';
import { TongbuError } from '../../core/errors.js';
import { mysqlError, type ErrorContext } from './mysql-errors.js';

export const SESSION_SQL_MODE = [
  'STRICT_ALL_TABLES',
  'NO_ZERO_DATE',
  'NO_ZERO_IN_DATE',
  'ERROR_FOR_DIVISION_BY_ZERO',
  'NO_ENGINE_SUBSTITUTION',
  'NO_AUTO_VALUE_ON_ZERO',
].join(',');

export type ResultRows = unknown[][];

/** One connection, promise-wrapped, with streaming for long ordered reads. */
export class MysqlSession {
  constructor(
    private readonly conn: Connection,
    private readonly ctx: ErrorContext,
  ) {}

  get threadId(): number {
    return this.conn.threadId;
  }

  /** Runs one statement; result rows as arrays (or the OK packet for writes). */
  query<T = ResultRows>(
    sql: string,
    action: string,
    options: { infile?: () => NodeJS.ReadableStream } = {},
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.conn.query(
        {
          sql,
          rowsAsArray: true,
          ...(options.infile !== undefined ? { infileStreamFactory: options.infile as never } : {}),
        },
        (err: QueryError | null, result: unknown) => {
          if (err !== null) reject(mysqlError(err, this.ctx, action));
          else resolve(result as T);
        },
      );
    });
  }

  /**
   * Streams the rows of one query in batches of about `batchRows`, pausing
   * the socket while the consumer is behind. Stopping early destroys the
   * connection (the server would otherwise finish sending first); the pool
   * then drops it.
   */
  async *stream(sql: string, batchRows: number, action: string): AsyncGenerator<ResultRows> {
    let buf: ResultRows = [];
    let done = false;
    let failure: unknown;
    let wake: (() => void) | undefined;
    const q = this.conn.query({ sql, rowsAsArray: true });
    q.on('result', (row: unknown) => {
      buf.push(row as unknown[]);
      if (buf.length >= batchRows) {
        if (buf.length >= batchRows * 2) this.conn.pause();
        wake?.();
      }
    });
    q.on('error', (err: QueryError) => {
      failure = err;
      done = true;
      wake?.();
    });
    q.on('end', () => {
      done = true;
      wake?.();
    });
    let finished = false;
    try {
      for (;;) {
        if (buf.length < batchRows && !done) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        if (failure !== undefined) throw mysqlError(failure, this.ctx, action);
        if (buf.length === 0) break;
        const out = buf;
        buf = [];
        this.conn.resume();
        yield out;
      }
      finished = true;
    } finally {
      if (!finished && !done) this.broken = true;
    }
  }

  /** Set when the session must not be reused (a stream stopped early). */
  broken = false;

  destroy(): void {
    this.conn.destroy();
  }

  end(): Promise<void> {
    return new Promise((resolve) => this.conn.end(() => resolve()));
  }
}

/** Opens one session with the tongbu session settings. */
export async function openSession(
  options: ConnectionOptions,
  ctx: ErrorContext,
): Promise<MysqlSession> {
  const conn = mysql.createConnection({
    ...options,
    charset: 'UTF8MB4_GENERAL_CI',
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    decimalNumbers: false,
    jsonStrings: true,
    connectTimeout: 10_000,
  });
  // Errors after the handshake arrive on the query that hits them; this
  // keeps an idle connection's late 'error' event from crashing the process.
  conn.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    conn.connect((err) => (err === null ? resolve() : reject(mysqlError(err, ctx, 'connect'))));
  });
  const session = new MysqlSession(conn, ctx);
  try {
    await session.query(
      `SET time_zone = '+00:00', sql_mode = '${SESSION_SQL_MODE}', NAMES utf8mb4`,
      'set up the session',
    );
  } catch (err) {
    session.destroy();
    throw err;
  }
  return session;
}

/** Up to `size` sessions for reads, made on demand, reused in turn. */
export class MysqlPool {
  private readonly free: MysqlSession[] = [];
  private readonly waiting: Array<{
    resolve: (s: MysqlSession) => void;
    reject: (e: unknown) => void;
  }> = [];
  private live = 0;
  private closed = false;

  constructor(
    readonly options: ConnectionOptions,
    readonly ctx: ErrorContext,
    readonly size = 3,
  ) {}

  async acquire(): Promise<MysqlSession> {
    if (this.closed) throw new TongbuError('INTERNAL', `${this.ctx.display}: endpoint is closed`);
    const ready = this.free.pop();
    if (ready !== undefined) return ready;
    if (this.live < this.size) {
      this.live++;
      try {
        return await openSession(this.options, this.ctx);
      } catch (err) {
        this.live--;
        throw err;
      }
    }
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  release(session: MysqlSession): void {
    if (session.broken || this.closed) {
      session.destroy();
      this.live--;
      const next = this.waiting.shift();
      if (next !== undefined) this.acquire().then(next.resolve, next.reject);
      return;
    }
    const next = this.waiting.shift();
    if (next !== undefined) next.resolve(session);
    else this.free.push(session);
  }

  async use<T>(fn: (session: MysqlSession) => Promise<T>): Promise<T> {
    const session = await this.acquire();
    try {
      return await fn(session);
    } finally {
      this.release(session);
    }
  }

  /** Stops the statement a session is running (from a separate connection). */
  async kill(threadId: number): Promise<void> {
    const killer = await openSession(this.options, this.ctx);
    try {
      await killer.query(`KILL QUERY ${threadId}`, 'cancel a query');
    } finally {
      await killer.end();
    }
  }

  /** Makes a closed pool usable again (an endpoint may be closed and reopened). */
  reopen(): void {
    this.closed = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) {
      w.reject(new TongbuError('ABORTED', `${this.ctx.display}: endpoint closed`));
    }
    const idle = this.free.splice(0);
    this.live -= idle.length;
    await Promise.all(idle.map((s) => s.end()));
  }
}
