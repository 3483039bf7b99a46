/**
 * COPY in both directions. Reads stream `COPY (SELECT …) TO STDOUT` in text
 * format and parse its lines (one statement for a whole scan, no per-batch
 * round trips; the socket's backpressure paces the server). Writes stream
 * `COPY … FROM STDIN`, one stream kept open across consecutive inserts, in
 * binary format (postgres-binary.ts) when every column has a binary form
 * and in text format otherwise.
 */
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo, type CopyStreamQuery } from 'pg-copy-streams';
import { TongbuError } from '../../core/errors.js';
import type { CanonicalValue, Row } from '../table/canonical.js';
import { BinaryEncoder, binaryCopyable, fieldWriters } from './postgres-binary.js';
import { pgError } from './postgres-errors.js';
import { checkAborted, connectPooled, type Connection } from './postgres-session.js';
import { copyField, copyUnescape, decoder, mayBeEscaped, type PgColumn } from './postgres-types.js';

const NEWLINE = 10;
/** How much a write stream buffers before asking for a 'drain' (binary chunks are 1 MiB). */
const WRITE_HIGH_WATER = 4 << 20;

/**
 * Rows of a `SELECT` (whose columns are the select expressions of `cols`),
 * in batches of `batchRows`. Stopping early drops the connection, which
 * ends the statement on the server.
 */
export async function* copyOutRows(
  pool: pg.Pool,
  conn: Connection,
  select: string,
  cols: readonly PgColumn[],
  batchRows: number,
  signal?: AbortSignal,
): AsyncGenerator<Row[]> {
  checkAborted(conn, signal);
  const decode = cols.map(decoder);
  const escaped = cols.map(mayBeEscaped);
  const width = cols.length;
  const client = await connectPooled(pool, conn);
  let clean = false;
  const stream = client.query(copyTo(`COPY (${select}) TO STDOUT`));
  const onAbort = (): void => {
    stream.destroy(new TongbuError('ABORTED', `${conn.ctx.display}: read cancelled`));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  let batch: Row[] = [];
  let rest: Buffer | undefined;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const buf = rest === undefined ? chunk : Buffer.concat([rest, chunk]);
      const end = buf.lastIndexOf(NEWLINE);
      if (end < 0) {
        rest = buf;
        continue;
      }
      rest = end + 1 < buf.length ? buf.subarray(end + 1) : undefined;
      const lines = buf.toString('utf8', 0, end).split('\n');
      for (const line of lines) {
        const fields = width === 1 ? [line] : line.split('\t');
        const row = new Array<CanonicalValue>(width);
        for (let i = 0; i < width; i++) {
          const f = fields[i]!;
          if (f === '\\N') row[i] = null;
          else row[i] = decode[i]!(escaped[i] && f.includes('\\') ? copyUnescape(f) : f);
        }
        batch.push(row);
        if (batch.length >= batchRows) {
          yield batch;
          batch = [];
          checkAborted(conn, signal);
        }
      }
    }
    clean = true; // the COPY is complete: the session is reusable
    if (batch.length > 0) yield batch;
  } catch (err) {
    if (signal?.aborted === true)
      throw new TongbuError('ABORTED', `${conn.ctx.display}: read cancelled`);
    throw pgError(err, conn.ctx, `cannot read ${conn.ctx.display}`);
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // A COPY left half-read leaves the session unusable: drop it.
    client.release(clean ? undefined : true);
  }
}

/**
 * One open `COPY … FROM STDIN` on a writer's client: binary format when
 * every column has a binary form (postgres-binary.ts), text otherwise.
 */
export class CopyIn {
  private failure: Error | undefined;
  private readonly stream: CopyStreamQuery;
  private readonly encoder: BinaryEncoder | undefined;

  constructor(
    client: pg.ClientBase,
    /** The quoted table name. */
    table: string,
    /** The columns each row carries, in order. */
    cols: readonly PgColumn[],
    /** What this stream writes into: a writer reuses the stream only for the same target. */
    readonly target: string,
    /** COPY FREEZE (a table created in this transaction). */
    freeze = false,
  ) {
    const binary = binaryCopyable(cols);
    const options = [...(binary ? ['FORMAT binary'] : []), ...(freeze ? ['FREEZE'] : [])];
    const list = cols.map((c) => c.ident).join(', ');
    const sql = `COPY ${table} (${list}) FROM STDIN${options.length > 0 ? ` WITH (${options.join(', ')})` : ''}`;
    // Binary data goes in 1 MiB chunks: let a few queue before waiting for 'drain'.
    this.stream = client.query(copyFrom(sql, binary ? { highWaterMark: WRITE_HIGH_WATER } : {}));
    this.stream.on('error', (err: Error) => {
      this.failure ??= err;
    });
    if (binary) this.encoder = new BinaryEncoder((chunk) => this.stream.write(chunk));
  }

  /** Whether the stream is in binary format. */
  get binary(): boolean {
    return this.encoder !== undefined;
  }

  /** Writes rows whose values are in the order of `cols`. */
  async write(cols: readonly PgColumn[], rows: readonly Row[]): Promise<void> {
    this.check();
    if (rows.length === 0) return;
    if (this.encoder !== undefined) {
      const writers = fieldWriters(cols);
      let next = 0;
      while (next < rows.length) {
        next = this.encoder.encodeRows(writers, rows, next);
        if (this.encoder.blocked) {
          await this.drain();
          this.encoder.blocked = false;
        }
      }
      return;
    }
    const width = cols.length;
    // One string built by appending is the fastest form here (V8 ropes).
    let out = '';
    for (const row of rows) {
      out += copyField(cols[0]!, row[0] ?? null);
      for (let i = 1; i < width; i++) {
        out += '\t';
        out += copyField(cols[i]!, row[i] ?? null);
      }
      out += '\n';
    }
    if (!this.stream.write(out)) await this.drain();
    this.check();
  }

  /** Waits until the stream takes more (or fails). */
  private async drain(): Promise<void> {
    // once() rejects on 'error', which `failure` holds.
    await once(this.stream, 'drain').catch(() => undefined);
    this.check();
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Ends the COPY; resolves when the server has taken every row. */
  async end(): Promise<void> {
    this.check();
    this.encoder?.finish();
    this.stream.end();
    await finished(this.stream);
  }

  /** Abandons the COPY (the server discards it and the transaction is failed). */
  async abort(): Promise<void> {
    if (this.stream.destroyed) return;
    this.stream.destroy(new Error('tongbu rolled back'));
    await finished(this.stream).catch(() => undefined);
  }
}
