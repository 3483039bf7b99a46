/**
 * One write transaction on a dedicated session. `insert` loads rows with
 * LOAD DATA LOCAL (mysql-load.ts) when the server allows it, else with
 * multi-row INSERT; `upsert` is multi-row INSERT … ON DUPLICATE KEY
 * UPDATE; statements are about `STATEMENT_BYTES` (well under
 * max_allowed_packet), one in flight while the next is built. MySQL DDL
 * commits at once, so a `create` that is rolled back drops the table it
 * made.
 */
import { Readable } from 'node:stream';
import { TongbuError } from '../../core/errors.js';
import type { KeyTuple, Row } from '../table/canonical.js';
import type { TableWriter } from '../table/table-endpoint.js';
import type { Column, TableSchema } from '../table/table-schema.js';
import { encodeRows, loadDataSql } from './mysql-load.js';
import type { MysqlSession } from './mysql-pool.js';
import { keyListCondition, type KeySql } from './mysql-sql.js';
import { binaryCollation, ddlType, quoteId, type Flavor } from './mysql-types.js';
import { asText, sqlLiteral } from './mysql-values.js';

/** 256 KiB to 4 MiB measured alike on MariaDB 10.11 (within noise). */
const STATEMENT_BYTES = 1 << 20;
const DELETE_KEYS = 2000;

export interface WriteTarget {
  /** `db`.`table`, quoted. */
  readonly sqlName: string;
  readonly display: string;
  readonly key: KeySql;
  readonly keyIds: readonly string[];
  /** max_allowed_packet of the server, bytes. */
  readonly maxPacket: number;
  /** The server accepts LOAD DATA LOCAL (`@@local_infile`). */
  readonly localInfile: boolean;
}

export function createTableSql(
  sqlName: string,
  schema: TableSchema,
  flavor: Flavor,
  hasUuid: boolean,
): string {
  const cols = schema.columns.map(
    (c) => `${quoteId(c.name)} ${ddlType(c, schema.key.includes(c.name), flavor, hasUuid)}`,
  );
  const pk = `PRIMARY KEY (${schema.key.map(quoteId).join(', ')})`;
  return (
    `CREATE TABLE ${sqlName} (${[...cols, pk].join(', ')}) ` +
    `ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${binaryCollation(flavor)}`
  );
}

export class MysqlWriter implements TableWriter {
  private inflight: Promise<unknown> | undefined;
  private failure: Error | undefined;
  private ended = false;

  constructor(
    private readonly session: MysqlSession,
    private readonly target: WriteTarget,
    private readonly created: boolean,
    private readonly finish: (committed: boolean) => Promise<void>,
  ) {}

  async insert(columns: readonly Column[], rows: readonly Row[]): Promise<void> {
    if (!this.target.localInfile) return this.writeRows(columns, rows, '');
    if (rows.length === 0) return;
    const chunks = encodeRows(columns, rows);
    const action = `load rows into ${this.target.display}`;
    await this.send(loadDataSql(this.target.sqlName, columns), action, {
      infile: () => Readable.from(chunks),
      check: async (result) => {
        const r = result as { affectedRows?: number; warningStatus?: number };
        if ((r.warningStatus ?? 0) === 0 && r.affectedRows === rows.length) return;
        // LOAD DATA LOCAL demotes errors to warnings: make them errors again.
        const warnings = await this.session.query(`SHOW WARNINGS LIMIT 3`, action);
        const text = warnings.map((w) => asText(w[2])).join('; ');
        const duplicate = /duplicate/i.test(text);
        throw new TongbuError(
          duplicate ? 'CONFLICT' : 'BAD_ARGUMENT',
          `${action}: ${text || `${r.affectedRows} of ${rows.length} rows loaded`}`,
          { data: { url: this.target.display } },
        );
      },
    });
  }

  async upsert(columns: readonly Column[], rows: readonly Row[]): Promise<void> {
    const keys = new Set(this.target.key.columns.map((c) => c.name));
    const set = columns
      .filter((c) => !keys.has(c.name))
      .map((c) => `${quoteId(c.name)}=VALUES(${quoteId(c.name)})`);
    const first = quoteId(this.target.key.columns[0]!.name);
    await this.writeRows(
      columns,
      rows,
      ` ON DUPLICATE KEY UPDATE ${set.length > 0 ? set.join(',') : `${first}=${first}`}`,
    );
  }

  async delete(keys: readonly KeyTuple[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_KEYS) {
      const chunk = keys.slice(i, i + DELETE_KEYS);
      await this.send(
        `DELETE FROM ${this.target.sqlName} WHERE ${keyListCondition(this.target.key, chunk, this.target.keyIds)}`,
        `delete rows from ${this.target.display}`,
      );
    }
  }

  async commit(): Promise<void> {
    this.checkOpen();
    try {
      await this.drain();
      await this.session.query('COMMIT', `commit to ${this.target.display}`);
    } catch (err) {
      await this.rollback().catch(() => undefined);
      throw err;
    }
    this.ended = true;
    await this.finish(true);
  }

  async rollback(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    try {
      await this.inflight?.catch(() => undefined);
      await this.session.query('ROLLBACK', `roll back ${this.target.display}`);
      if (this.created) {
        await this.session.query(
          `DROP TABLE IF EXISTS ${this.target.sqlName}`,
          `drop ${this.target.display}`,
        );
      }
    } finally {
      await this.finish(false);
    }
  }

  private async writeRows(
    columns: readonly Column[],
    rows: readonly Row[],
    suffix: string,
  ): Promise<void> {
    if (rows.length === 0) return;
    const head = `INSERT INTO ${this.target.sqlName} (${columns.map((c) => quoteId(c.name)).join(',')}) VALUES `;
    // Lengths count UTF-16 units; a unit is at most 3 bytes of UTF-8.
    const limit = Math.min(STATEMENT_BYTES, Math.floor(this.target.maxPacket / 4));
    const width = columns.length;
    let parts: string[] = [];
    let size = head.length + suffix.length;
    for (const row of rows) {
      let text = '(';
      for (let i = 0; i < width; i++) {
        if (i > 0) text += ',';
        text += sqlLiteral(columns[i]!, row[i] ?? null);
      }
      text += ')';
      if (parts.length > 0 && size + text.length + 1 > limit) {
        await this.send(head + parts.join(',') + suffix, `write rows to ${this.target.display}`);
        parts = [];
        size = head.length + suffix.length;
      }
      parts.push(text);
      size += text.length + 1;
    }
    await this.send(head + parts.join(',') + suffix, `write rows to ${this.target.display}`);
  }

  /** Waits for the statement in flight (and its check), then starts this one. */
  private async send(
    sql: string,
    action: string,
    options: {
      infile?: () => NodeJS.ReadableStream;
      check?: (result: unknown) => Promise<void>;
    } = {},
  ): Promise<void> {
    this.checkOpen();
    await this.drain();
    const check = options.check;
    const query = this.session.query<unknown>(
      sql,
      action,
      options.infile !== undefined ? { infile: options.infile } : {},
    );
    const p = check === undefined ? query : query.then(check);
    p.catch((err: unknown) => {
      this.failure ??= err instanceof Error ? err : new TongbuError('INTERNAL', String(err));
    });
    this.inflight = p;
  }

  private async drain(): Promise<void> {
    const p = this.inflight;
    this.inflight = undefined;
    if (p !== undefined) await p;
    if (this.failure !== undefined) throw this.failure;
  }

  private checkOpen(): void {
    if (this.ended) {
      throw new TongbuError('INTERNAL', `${this.target.display}: the write transaction has ended`);
    }
  }
}
