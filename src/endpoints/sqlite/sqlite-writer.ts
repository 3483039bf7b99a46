/**
 * One write transaction on a SQLite table: its own read-write connection,
 * BEGIN IMMEDIATE taken by the endpoint before the writer is made. Inserts
 * go through a prepared multi-row INSERT (100 rows a statement), upserts
 * through INSERT … ON CONFLICT (key) DO UPDATE, or UPDATE-then-INSERT when
 * no unique index covers the key (a `key=` table), deletes by key.
 */
import type Database from 'better-sqlite3';
import { TongbuError } from '../../core/errors.js';
import type { KeyTuple, Row } from '../table/canonical.js';
import type { TableWriter } from '../table/table-endpoint.js';
import type { Column } from '../table/table-schema.js';
import { sqliteError } from './sqlite-errors.js';
import { keyCompare, type TableInfo } from './sqlite-table-info.js';
import { quoteIdent } from './sqlite-types.js';
import { bindValues, writerFor, type BindValue, type Writer } from './sqlite-values.js';

const ROWS_PER_STATEMENT = 100;
const MAX_PARAMS = 32_000;

interface Prepared {
  readonly names: string[];
  readonly writers: (Writer | undefined)[];
}

export class SqliteWriter implements TableWriter {
  private readonly statements = new Map<string, Database.Statement>();
  private finished = false;

  constructor(
    private readonly db: Database.Database,
    private readonly info: TableInfo,
    private readonly display: string,
    /** Called once, after COMMIT or ROLLBACK, with the connection closed. */
    private readonly onEnd: (committed: boolean) => void,
    /** Run on the connection right after COMMIT (best effort). */
    private readonly afterCommit?: (db: Database.Database) => void,
  ) {}

  async insert(columns: readonly Column[], rows: readonly Row[]): Promise<void> {
    this.run(() => this.insertRows(columns, rows, ''));
    return Promise.resolve();
  }

  async upsert(columns: readonly Column[], rows: readonly Row[]): Promise<void> {
    this.run(() => {
      if (this.info.keyUnique) this.insertRows(columns, rows, this.onConflict(columns));
      else this.updateThenInsert(columns, rows);
    });
    return Promise.resolve();
  }

  async delete(keys: readonly KeyTuple[]): Promise<void> {
    this.run(() => {
      const st = this.statement(`DELETE FROM ${this.info.quoted} WHERE ${this.keyMatch()}`);
      for (const key of keys) st.run(bindValues(this.info.keyColumns, key));
    });
    return Promise.resolve();
  }

  async commit(): Promise<void> {
    this.run(() => this.db.exec('COMMIT'));
    try {
      this.afterCommit?.(this.db);
    } catch {
      // committed already; what follows is an optimisation
    }
    this.end(true);
    return Promise.resolve();
  }

  async rollback(): Promise<void> {
    if (this.finished) return;
    try {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
    } finally {
      this.end(false);
    }
    return Promise.resolve();
  }

  /** Runs a step; a failure rolls the transaction back (the writer is then finished). */
  private run(step: () => void): void {
    if (this.finished)
      throw new TongbuError(
        'INTERNAL',
        `${this.display}: the write transaction is already finished`,
      );
    try {
      step();
    } catch (err) {
      try {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
      } catch {
        // the connection closes next; SQLite rolls back what is left
      }
      this.end(false);
      throw sqliteError(err, this.display);
    }
  }

  private end(committed: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.statements.clear();
    this.db.close();
    this.onEnd(committed);
  }

  private statement(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (st === undefined) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  /** The destination columns the given columns land in, and how values convert. */
  private prepare(columns: readonly Column[]): Prepared {
    const dest = this.info.schema.columns;
    const names: string[] = [];
    const writers: (Writer | undefined)[] = [];
    for (const col of columns) {
      const d =
        dest.find((c) => c.name === col.name) ??
        dest.find((c) => c.name.toLowerCase() === col.name.toLowerCase());
      if (d === undefined) {
        throw new TongbuError(
          'SCHEMA_MISMATCH',
          `${this.display}: the table has no column "${col.name}"`,
          {
            data: { column: col.name },
          },
        );
      }
      names.push(d.name);
      writers.push(writerFor(d.type, col.type));
    }
    for (const k of this.info.schema.key) {
      if (!names.includes(k))
        throw new TongbuError(
          'INTERNAL',
          `${this.display}: rows written without key column "${k}"`,
        );
    }
    return { names, writers };
  }

  private insertRows(columns: readonly Column[], rows: readonly Row[], tail: string): void {
    const { names, writers } = this.prepare(columns);
    const width = names.length;
    const one = `(${names.map(() => '?').join(', ')})`;
    const head = `INSERT INTO ${this.info.quoted} (${names.map(quoteIdent).join(', ')}) VALUES `;
    const per = Math.max(1, Math.min(ROWS_PER_STATEMENT, Math.floor(MAX_PARAMS / width)));
    const bulk =
      rows.length >= per
        ? this.statement(`${head}${Array<string>(per).fill(one).join(', ')}${tail}`)
        : undefined;
    const single = this.statement(`${head}${one}${tail}`);
    const params: BindValue[] = new Array<BindValue>(per * width);
    const rowParams: BindValue[] = new Array<BindValue>(width);
    let r = 0;
    if (bulk !== undefined) {
      for (; r + per <= rows.length; r += per) {
        let o = 0;
        for (let i = r; i < r + per; i++) o = fill(params, o, rows[i]!, writers, width);
        bulk.run(params);
      }
    }
    for (; r < rows.length; r++) {
      fill(rowParams, 0, rows[r]!, writers, width);
      single.run(rowParams);
    }
  }

  private onConflict(columns: readonly Column[]): string {
    const keys = this.info.schema.key;
    const target = keys.map(quoteIdent).join(', ');
    const set = this.prepare(columns)
      .names.filter((n) => !keys.includes(n))
      .map((n) => `${quoteIdent(n)} = excluded.${quoteIdent(n)}`);
    return set.length === 0
      ? ` ON CONFLICT (${target}) DO NOTHING`
      : ` ON CONFLICT (${target}) DO UPDATE SET ${set.join(', ')}`;
  }

  /** Upsert without a unique index on the key: UPDATE, and INSERT when nothing matched. */
  private updateThenInsert(columns: readonly Column[], rows: readonly Row[]): void {
    const { names, writers } = this.prepare(columns);
    const keys = this.info.schema.key;
    const valueAt = names.map((n, i) => (keys.includes(n) ? -1 : i)).filter((i) => i >= 0);
    const keyAt = keys.map((k) => names.indexOf(k));
    const match = this.keyMatch();
    const update =
      valueAt.length === 0
        ? this.statement(`SELECT 1 FROM ${this.info.quoted} WHERE ${match}`)
        : this.statement(
            `UPDATE ${this.info.quoted} SET ${valueAt.map((i) => `${quoteIdent(names[i]!)} = ?`).join(', ')} WHERE ${match}`,
          );
    const insert = this.statement(
      `INSERT INTO ${this.info.quoted} (${names.map(quoteIdent).join(', ')}) VALUES (${names.map(() => '?').join(', ')})`,
    );
    const all: BindValue[] = new Array<BindValue>(names.length);
    for (const row of rows) {
      fill(all, 0, row, writers, names.length);
      const params = [...valueAt.map((i) => all[i]!), ...keyAt.map((i) => all[i]!)];
      const found =
        valueAt.length === 0 ? update.get(params) !== undefined : update.run(params).changes > 0;
      if (!found) insert.run(all);
    }
  }

  /** `key = ?` with the table's own collation, so the key's index serves it. */
  private keyMatch(): string {
    return keyCompare({ keyColumns: this.info.keyColumns, binaryKeys: true }, '=');
  }
}

function fill(
  out: BindValue[],
  at: number,
  row: Row,
  writers: readonly (Writer | undefined)[],
  width: number,
): number {
  for (let j = 0; j < width; j++) {
    const v = row[j];
    if (v === null || v === undefined) {
      out[at++] = null;
    } else {
      const w = writers[j];
      out[at++] = w === undefined ? (v as BindValue) : w(v);
    }
  }
  return at;
}
