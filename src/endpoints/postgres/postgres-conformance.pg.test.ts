import pg from 'pg';
import { afterAll, describe } from 'vitest';
import { databaseAvailable, PG_URL, tableUrl } from '../../test-support/databases.js';
import { runTableEndpointSuite } from '../table/table-endpoint-suite.js';
import { parseTableUrl } from '../table/table-url.js';
import { PostgresTable } from './postgres-table.js';

const ok = await databaseAvailable('postgres');

describe.skipIf(!ok)('postgres table endpoint', () => {
  const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
  afterAll(async () => admin.end());
  runTableEndpointSuite('postgres', {
    open: (t) => new PostgresTable(parseTableUrl(tableUrl('postgres', t))),
    drop: async (t) => {
      await admin.query(`DROP TABLE IF EXISTS "${t}"`);
    },
  });
});
