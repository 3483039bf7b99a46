/**
 * Test helpers for the PostgreSQL endpoint's tests (the `-suite` name keeps
 * it out of the build): an admin pool, fresh table names remembered for
 * clean-up, and endpoints opened on them.
 */
import pg from 'pg';
import { PG_URL, tableUrl, uniqueTable } from '../../test-support/databases.js';
import { parseTableUrl } from '../table/table-url.js';
import { PostgresTable } from './postgres-table.js';

export function pgTestTables(prefix: string, poolSize = 2) {
  const admin = new pg.Pool({ connectionString: PG_URL, max: poolSize });
  const made: string[] = [];
  const fresh = (): string => {
    const t = uniqueTable(prefix);
    made.push(t);
    return t;
  };
  const open = async (t: string, extra = ''): Promise<PostgresTable> => {
    const ep = new PostgresTable(parseTableUrl(tableUrl('postgres', t, extra)));
    await ep.open();
    return ep;
  };
  return { admin, made, fresh, open };
}
