/**
 * Turns a table URL into its endpoint. Engine clients load only when a URL
 * names their engine, so a directory sync never pays for pg or mysql2.
 */
import type { TableEndpoint } from './table-endpoint.js';
import { parseTableUrl, type TableUrl } from './table-url.js';

export async function openTable(spec: string): Promise<TableEndpoint> {
  return openTableUrl(parseTableUrl(spec));
}

export async function openTableUrl(url: TableUrl): Promise<TableEndpoint> {
  switch (url.engine) {
    case 'sqlite': {
      const { SqliteTable } = await import('../sqlite/sqlite-table.js');
      return new SqliteTable(url);
    }
    case 'postgres': {
      const { PostgresTable } = await import('../postgres/postgres-table.js');
      return new PostgresTable(url);
    }
    case 'mysql': {
      const { MysqlTable } = await import('../mysql/mysql-table.js');
      return new MysqlTable(url);
    }
  }
}

/** The same database, another table: where keep-both puts a table's conflict rows. */
export async function openSiblingTable(url: TableUrl, table: string): Promise<TableEndpoint> {
  const { key, where, ...rest } = url;
  void key;
  void where;
  return openTableUrl({
    ...rest,
    table,
    display: url.display.replace(/table=[^&]*/, `table=${encodeURIComponent(table)}`),
  });
}
