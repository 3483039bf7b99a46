import { describe } from 'vitest';
import { databaseAvailable, tableUrl } from '../../test-support/databases.js';
import { runTableEndpointSuite } from '../table/table-endpoint-suite.js';
import { parseTableUrl } from '../table/table-url.js';
import { MysqlTable } from './mysql-table.js';
import { dropTables } from './mysql-test-suite.js';

const ok = await databaseAvailable('mysql');

describe.skipIf(!ok)('mysql table endpoint', () => {
  runTableEndpointSuite('mysql', {
    open: (t) => new MysqlTable(parseTableUrl(tableUrl('mysql', t))),
    drop: (t) => dropTables([t]),
  });
});
