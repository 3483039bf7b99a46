/**
 * The MySQL/MariaDB table endpoint (`mysql://user[:pw]@host[:port]/db?table=t`,
 * `mariadb://` too). Reads go through a pool of three sessions; a write
 * transaction gets its own session. The password comes from the URL or
 * MYSQL_PWD and appears in no message. Type mapping: mysql-types.ts;
 * values: mysql-values.ts; checksums: mysql-checksums.ts.
 */
import { TongbuError } from '../../core/errors.js';
import type {
  CanonicalValue,
  KeyRange,
  KeyTuple,
  Row,
  SegmentChecksum,
} from '../table/canonical.js';
import type {
  NativeChecksums,
  ScanOptions,
  TableEndpoint,
  TableWriter,
} from '../table/table-endpoint.js';
import type { Column, TableSchema } from '../table/table-schema.js';
import type { TableUrl } from '../table/table-url.js';
import { checksums } from './mysql-checksums.js';
import type { ErrorContext } from './mysql-errors.js';
import { MysqlPool, openSession, type MysqlSession } from './mysql-pool.js';
import {
  countRows,
  fetchRows,
  keyBuckets,
  keySums,
  maxValue,
  nativeOf,
  readRows,
  type TableContext,
} from './mysql-read.js';
import { readSchema, serverFlavor } from './mysql-schema.js';
import { splitPoints } from './mysql-split.js';
import {
  keyOrderExpr,
  orderedNatively,
  quoteId,
  splitTableName,
  type Flavor,
} from './mysql-types.js';
import { createTableSql, MysqlWriter } from './mysql-writer.js';

export class MysqlTable implements TableEndpoint {
  readonly engine = 'mysql' as const;
  readonly url: string;
  readonly table: string;
  readonly native: NativeChecksums;

  private readonly pool: MysqlPool;
  private readonly ctxError: ErrorContext;
  private readonly db: string;
  private readonly name: string;
  private readonly sqlName: string;
  private readonly keyParam: readonly string[] | undefined;
  private readonly where: string | undefined;
  private flavor: Flavor = 'mariadb';
  private version = 0;
  private maxPacket = 16 << 20;
  private localInfile = false;
  private opened = false;
  private ctx: TableContext | undefined;

  constructor(url: TableUrl) {
    this.url = url.display;
    this.table = url.table;
    const host = url.host ?? '127.0.0.1';
    const port = url.port ?? 3306;
    const user = url.user ?? process.env['USER'] ?? 'root';
    const database = url.database ?? '';
    const { db, name } = splitTableName(url.table, database);
    if (db === '') {
      throw new TongbuError(
        'BAD_URL',
        `${url.display}: name the database (mysql://host/DB?table=…)`,
      );
    }
    this.db = db;
    this.name = name;
    this.sqlName = `${quoteId(db)}.${quoteId(name)}`;
    this.keyParam = url.key;
    this.where = url.where;
    this.ctxError = { host, port, user, database: db, display: url.display };
    const password = url.password ?? process.env['MYSQL_PWD'];
    this.pool = new MysqlPool(
      { host, port, user, database: db, ...(password !== undefined ? { password } : {}) },
      this.ctxError,
    );
    this.native = {
      nativeChecksumId: (columns) => this.nativeChecksumId(columns),
      nativeChecksums: (columns, ranges, options) =>
        checksums(this.context(), columns, ranges, { ...options, native: true }),
    };
  }

  async open(): Promise<void> {
    this.pool.reopen();
    await this.pool.use(async (session) => {
      ({ flavor: this.flavor, version: this.version } = await serverFlavor(session));
      const vars = await session.query(
        'SELECT @@max_allowed_packet, @@local_infile',
        'read settings',
      );
      this.maxPacket = Number(vars[0]?.[0] ?? this.maxPacket);
      this.localInfile = Number(vars[0]?.[1] ?? 0) === 1;
    });
    await this.loadSchema();
    this.opened = true;
  }

  get schema(): TableSchema | undefined {
    if (!this.opened) throw new TongbuError('INTERNAL', `${this.url}: not open`);
    return this.ctx?.schema;
  }

  scan(options: ScanOptions = {}): AsyncIterable<Row[]> {
    const ctx = this.context();
    return readRows(ctx, ctx.schema.columns, options);
  }

  scanKeys(options: Omit<ScanOptions, 'since'> = {}): AsyncIterable<KeyTuple[]> {
    const ctx = this.context();
    return readRows(ctx, ctx.key.columns, options);
  }

  fetch(keys: readonly KeyTuple[]): Promise<Row[]> {
    return fetchRows(this.context(), keys);
  }

  count(range?: KeyRange): Promise<number> {
    return countRows(this.context(), range);
  }

  keyBuckets(width: bigint): Promise<Map<bigint, SegmentChecksum>> {
    return keyBuckets(this.context(), width);
  }

  keySums(ranges: readonly KeyRange[]): Promise<SegmentChecksum[]> {
    return keySums(this.context(), ranges);
  }

  splitPoints(parts: number, range?: KeyRange): Promise<KeyTuple[]> {
    return splitPoints(this.context(), parts, range);
  }

  checksums(
    columns: readonly Column[],
    ranges: readonly KeyRange[],
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<SegmentChecksum[]> {
    return checksums(this.context(), columns, ranges, options);
  }

  maxValue(column: string): Promise<CanonicalValue> {
    return maxValue(this.context(), column);
  }

  async beginWrite(options: { readonly create?: TableSchema } = {}): Promise<TableWriter> {
    if (!this.opened) throw new TongbuError('INTERNAL', `${this.url}: not open`);
    const create = options.create;
    if (create === undefined && this.ctx === undefined) {
      throw new TongbuError('NOT_FOUND', `${this.url}: table ${this.name} does not exist`);
    }
    const session = await openSession(this.pool.options, this.ctxError);
    try {
      if (create !== undefined) {
        // Without this, an old server makes the first TIMESTAMP NOT NULL auto-update.
        await session
          .query('SET SESSION explicit_defaults_for_timestamp = 1', 'set up')
          .catch(() => undefined);
        const hasUuid = this.flavor === 'mariadb' && this.version >= 100700;
        await session.query(
          createTableSql(this.sqlName, create, this.flavor, hasUuid),
          `create ${this.url}`,
        );
        await this.loadSchemaWith(session);
      }
      await session.query('START TRANSACTION', `begin a transaction on ${this.url}`);
    } catch (err) {
      session.destroy();
      throw err;
    }
    const ctx = this.context();
    const writer = new MysqlWriter(
      session,
      {
        sqlName: this.sqlName,
        display: this.url,
        key: ctx.key,
        keyIds: ctx.keyIds,
        maxPacket: this.maxPacket,
        localInfile: this.localInfile,
      },
      create !== undefined,
      async (committed) => {
        await session.end().catch(() => session.destroy());
        if (create !== undefined && !committed) this.ctx = undefined;
      },
    );
    return writer;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  private nativeChecksumId(columns: readonly Column[]): string {
    const ctx = this.context();
    const types = columns.map((c) => {
      const n = nativeOf(ctx, c);
      return n.charset === null ? n.columnType : `${n.columnType}/${n.charset}`;
    });
    // Servers print values (doubles, JSON) alike only within one flavor and major version.
    const major = Math.floor(this.version / 10000);
    const json = this.flavor === 'mariadb' && this.version >= 100700 ? '+jn' : '';
    return `mysql:crc1:${this.flavor}${major}${json}:${types.join(',')}`;
  }

  private context(): TableContext {
    if (!this.opened) throw new TongbuError('INTERNAL', `${this.url}: not open`);
    if (this.ctx === undefined) {
      throw new TongbuError('SOURCE_NOT_FOUND', `${this.url}: table ${this.name} does not exist`);
    }
    return this.ctx;
  }

  private async loadSchema(): Promise<void> {
    await this.pool.use((session) => this.loadSchemaWith(session));
  }

  private async loadSchemaWith(session: MysqlSession): Promise<void> {
    const read = await readSchema(session, {
      db: this.db,
      name: this.name,
      display: this.url,
      key: this.keyParam,
      flavor: this.flavor,
    });
    if (read === undefined) {
      this.ctx = undefined;
      return;
    }
    const keyCols = read.schema.key.map((k) => read.schema.columns.find((c) => c.name === k)!);
    const keyNatives = keyCols.map((c) => read.natives.get(c.name)!);
    this.ctx = {
      pool: this.pool,
      sqlName: this.sqlName,
      display: this.url,
      schema: read.schema,
      natives: read.natives,
      key: {
        columns: keyCols,
        exprs: keyCols.map((c, i) => keyOrderExpr(keyNatives[i]!, c.type, this.flavor)),
        // Keyset pages need ORDER BY key to walk the primary key index.
        indexed:
          keyCols.every((c, i) => orderedNatively(keyNatives[i]!, c.type)) &&
          keyCols.every((c, i) => read.primary[i] === c.name),
      },
      keyIds: keyCols.map((c) => quoteId(c.name)),
      where: this.where,
      flavor: this.flavor,
      version: this.version,
    };
  }
}
