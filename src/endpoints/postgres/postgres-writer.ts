/**
 * One write transaction on a dedicated client (outside the read pool, so
 * reads never wait for it). A created table is made inside the transaction
 * without its primary key, filled through one long COPY (FREEZE: the rows
 * are born visible-to-all at commit), and gets its primary key at commit.
 * Upserts COPY into a temporary table and merge (ON CONFLICT where the key
 * is the primary key, UPDATE + INSERT otherwise); deletes join an unnest of
 * the keys. DDL is transactional, so a rollback also drops a created table.
 */
import type pg from 'pg';
import { TongbuError } from '../../core/errors.js';
import type { KeyTuple, Row } from '../table/canonical.js';
import type { TableWriter } from '../table/table-endpoint.js';
import type { Column, TableSchema } from '../table/table-schema.js';
import {
  addPrimaryKeySql,
  createTableSql,
  qualifiedName,
  readShape,
  type PgTableShape,
} from './postgres-catalog.js';
import { CopyIn } from './postgres-copy.js';
import { pgError } from './postgres-errors.js';
import { connectClient, rawQuery, type Connection } from './postgres-session.js';
import { fromTextParam, keyText, quoteIdent, type PgColumn } from './postgres-types.js';

const DELETE_BATCH = 10_000;

export class PostgresWriter implements TableWriter {
  private copy: CopyIn | undefined;
  private failure: Error | undefined;
  private finished = false;
  private readonly temps = new Map<string, string>();
  private readonly target: string;

  private constructor(
    private readonly client: pg.Client,
    private readonly conn: Connection,
    private readonly table: string,
    private readonly shape: PgTableShape,
    private readonly created: TableSchema | undefined,
    /** Whether ON CONFLICT can use the key (it is the primary key). */
    private readonly primary: boolean,
    private readonly onCommit: () => Promise<void>,
  ) {
    this.target = qualifiedName(table);
  }

  static async begin(
    conn: Connection,
    table: string,
    existing: { shape: PgTableShape; primary: boolean } | undefined,
    create: TableSchema | undefined,
    onCommit: () => Promise<void>,
  ): Promise<PostgresWriter> {
    if (create === undefined && existing === undefined) {
      throw new TongbuError('NOT_FOUND', `${conn.ctx.display}: no table "${table}"`, {
        data: { table },
      });
    }
    const client = await connectClient(conn);
    try {
      await rawQuery(client, conn, 'BEGIN');
      let shape = existing?.shape;
      if (create !== undefined) {
        await rawQuery(client, conn, createTableSql(table, create));
        shape = await readShape(client, conn, table, create.key);
      }
      return new PostgresWriter(
        client,
        conn,
        table,
        shape!,
        create,
        create === undefined && existing!.primary,
        onCommit,
      );
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  async insert(columns: readonly Column[], rows: readonly Row[]): Promise<void> {
    await this.step('insert', async () => {
      const cols = this.columns(columns);
      const target = `insert:${cols.map((c) => c.ident).join(',')}`;
      if (this.copy?.target !== target) {
        await this.endCopy();
        this.copy = new CopyIn(this.client, this.target, cols, target, this.created !== undefined);
      }
      await this.copy.write(cols, rows);
    });
  }

  async upsert(columns: readonly Column[], rows: readonly Row[]): Promise<void> {
    if (rows.length === 0) return;
    await this.step('upsert', async () => {
      await this.endCopy();
      const cols = this.columns(columns);
      const list = cols.map((c) => c.ident).join(', ');
      let temp = this.temps.get(list);
      if (temp === undefined) {
        temp = quoteIdent(`tongbu_upsert_${this.temps.size}`);
        await this.run(
          `CREATE TEMP TABLE ${temp} ON COMMIT DROP AS SELECT ${list} FROM ${this.target} WITH NO DATA`,
        );
        this.temps.set(list, temp);
      }
      const copy = new CopyIn(this.client, temp, cols, 'upsert');
      try {
        await copy.write(cols, rows);
        await copy.end();
      } catch (err) {
        await copy.abort();
        throw err;
      }
      const keys = this.shape.keyColumns;
      const match = keys.map((k) => `t.${k.ident} = s.${k.ident}`).join(' AND ');
      const rest = cols.filter((c) => !keys.includes(c));
      if (this.primary) {
        const action =
          rest.length === 0
            ? 'NOTHING'
            : `UPDATE SET ${rest.map((c) => `${c.ident} = EXCLUDED.${c.ident}`).join(', ')}`;
        await this.run(
          `INSERT INTO ${this.target} (${list}) SELECT ${list} FROM ${temp} ` +
            `ON CONFLICT (${keys.map((k) => k.ident).join(', ')}) DO ${action}`,
        );
      } else {
        if (rest.length > 0) {
          const set = rest.map((c) => `${c.ident} = s.${c.ident}`).join(', ');
          await this.run(`UPDATE ${this.target} AS t SET ${set} FROM ${temp} AS s WHERE ${match}`);
        }
        await this.run(
          `INSERT INTO ${this.target} (${list}) SELECT ${list} FROM ${temp} AS s ` +
            `WHERE NOT EXISTS (SELECT 1 FROM ${this.target} AS t WHERE ${match})`,
        );
      }
      await this.run(`TRUNCATE ${temp}`);
    });
  }

  async delete(keys: readonly KeyTuple[]): Promise<void> {
    if (keys.length === 0) return;
    await this.step('delete', async () => {
      await this.endCopy();
      const kc = this.shape.keyColumns;
      const params = kc.map((_c, i) => `$${i + 1}::text[]`).join(', ');
      const conv = kc.map((c, i) => `${fromTextParam(c, `v.k${i}`)} AS k${i}`).join(', ');
      const names = kc.map((_c, i) => `k${i}`).join(', ');
      const match = kc.map((c, i) => `t.${c.ident} = d.k${i}`).join(' AND ');
      const sql =
        `DELETE FROM ${this.target} AS t USING (SELECT ${conv} FROM unnest(${params}) AS v(${names})) AS d ` +
        `WHERE ${match}`;
      for (let at = 0; at < keys.length; at += DELETE_BATCH) {
        const part = keys.slice(at, at + DELETE_BATCH);
        const values = kc.map((c, i) =>
          part.map((k) => (k[i] === null ? null : keyText(c, k[i]!))),
        );
        await rawQuery(this.client, this.conn, sql, values);
      }
    });
  }

  async commit(): Promise<void> {
    this.checkOpen();
    try {
      if (this.failure !== undefined) throw this.failure;
      await this.endCopy();
      if (this.created !== undefined && this.created.key.length > 0) {
        await this.run(addPrimaryKeySql(this.table, this.created.key));
      }
      await this.run('COMMIT');
    } catch (err) {
      await this.rollback();
      throw pgError(err, this.conn.ctx, `cannot commit to ${this.conn.ctx.display}`);
    }
    this.finished = true;
    await this.client.end().catch(() => undefined);
    await this.onCommit();
  }

  async rollback(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    try {
      await this.copy?.abort();
      this.copy = undefined;
      await this.client.query('ROLLBACK');
    } catch {
      // Closing the session below rolls the transaction back on the server.
    } finally {
      await this.client.end().catch(() => undefined);
    }
  }

  private columns(columns: readonly Column[]): PgColumn[] {
    return columns.map((c) => {
      const pc = this.shape.columns.find((x) => x.column.name === c.name);
      if (pc === undefined) {
        throw new TongbuError(
          'SCHEMA_MISMATCH',
          `${this.conn.ctx.display}: table "${this.table}" has no column "${c.name}"`,
          {
            data: { table: this.table, column: c.name },
          },
        );
      }
      return pc;
    });
  }

  private async run(sql: string): Promise<void> {
    await rawQuery(this.client, this.conn, sql);
  }

  private async endCopy(): Promise<void> {
    const copy = this.copy;
    this.copy = undefined;
    await copy?.end();
  }

  private checkOpen(): void {
    if (this.finished)
      throw new TongbuError('INTERNAL', `${this.conn.ctx.display}: the write transaction is over`);
  }

  /** Runs one call; after a failure the transaction only rolls back. */
  private async step(what: string, fn: () => Promise<void>): Promise<void> {
    this.checkOpen();
    if (this.failure !== undefined) {
      throw new TongbuError(
        'INTERNAL',
        `${this.conn.ctx.display}: ${what} after a failed write; roll back`,
      );
    }
    try {
      await fn();
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      throw pgError(err, this.conn.ctx, `cannot ${what} into ${this.conn.ctx.display}`);
    }
  }
}
