/**
 * Test helpers for the MySQL/MariaDB endpoint tests (named *-suite.ts so
 * the build leaves it out): raw SQL on the test server, to build tables the
 * endpoint did not create, and collecting batches.
 */
import { MYSQL_URL, tableUrl } from '../../test-support/databases.js';
import type { Row } from '../table/canonical.js';
import { parseTableUrl } from '../table/table-url.js';
import type { ErrorContext } from './mysql-errors.js';
import { openSession } from './mysql-pool.js';
import { MysqlTable } from './mysql-table.js';
import { quoteId } from './mysql-types.js';
export { collect, failure } from '../../test-support/table-tests.js';

function target(): { options: Parameters<typeof openSession>[0]; ctx: ErrorContext } {
  const url = parseTableUrl(`${MYSQL_URL}?table=x`);
  const host = url.host ?? '127.0.0.1';
  const port = url.port ?? 3306;
  const user = url.user ?? 'root';
  const database = url.database ?? 'test';
  return {
    options: {
      host,
      port,
      user,
      database,
      ...(url.password !== undefined ? { password: url.password } : {}),
    },
    ctx: { host, port, user, database, display: url.display },
  };
}

/** Runs statements in order on one fresh session. */
export async function sql(...statements: string[]): Promise<unknown[][][]> {
  const { options, ctx } = target();
  const session = await openSession(options, ctx);
  try {
    const out: unknown[][][] = [];
    for (const s of statements) out.push(await session.query(s, 'test'));
    return out;
  } finally {
    await session.end();
  }
}

export async function dropTables(tables: readonly string[]): Promise<void> {
  if (tables.length === 0) return;
  await sql(`DROP TABLE IF EXISTS ${tables.map(quoteId).join(', ')}`);
}

export async function openTable(table: string, extra = ''): Promise<MysqlTable> {
  const ep = new MysqlTable(parseTableUrl(tableUrl('mysql', table, extra)));
  await ep.open();
  return ep;
}

/** Rows comparable with toEqual (bytes as hex). */
export function plain(rows: readonly Row[]): unknown[] {
  return rows.map((r) =>
    r.map((v) => (v instanceof Uint8Array ? `hex:${Buffer.from(v).toString('hex')}` : v)),
  );
}
