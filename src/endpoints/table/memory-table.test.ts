import { MemoryDatabase, MemoryTable } from './memory-table.js';
import { runTableEndpointSuite } from './table-endpoint-suite.js';

const db = new MemoryDatabase();
runTableEndpointSuite('memory', { open: (t) => new MemoryTable(db, t) });
