import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { runTableEndpointSuite } from '../table/table-endpoint-suite.js';
import { parseTableUrl } from '../table/table-url.js';
import { SqliteTable } from './sqlite-table.js';

const dir = mkdtempSync(join(tmpdir(), 'tongbu-sqlite-suite-'));
const file = join(dir, 'suite.db');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

runTableEndpointSuite('sqlite', {
  open: (t) => new SqliteTable(parseTableUrl(`sqlite:${file}?table=${t}`)),
});
