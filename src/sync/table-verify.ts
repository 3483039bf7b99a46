/**
 * `tongbu verify` for tables: proves two tables hold the same rows on the
 * columns they share, by segment checksums and bisection (table-diff.ts),
 * and names the keys that differ.
 */
import { TongbuError } from '../core/errors.js';
import { ProgressMeter, type ProgressListener } from '../core/progress.js';
import { keyText } from '../endpoints/table/canonical.js';
import type { TableEndpoint } from '../endpoints/table/table-endpoint.js';
import { commonSchema } from '../endpoints/table/table-schema.js';
import { diffTables } from './table-diff.js';

export interface TableVerifyReport {
  equal: boolean;
  source: string;
  destination: string;
  /** Keys only in the source, only in the destination, and with different rows (first 1000 each). */
  missing: string[];
  extra: string[];
  different: string[];
  counts: { missing: number; extra: number; different: number };
  sourceRows: number;
  destRows: number;
  /** Columns compared; columns on one side only are listed and not compared. */
  columns: string[];
  onlyInSource: string[];
  onlyInDest: string[];
  method: string;
  checksumQueries: number;
  rowsRead: number;
  durationMs: number;
}

const LIST_LIMIT = 1000;

export async function verifyTables(
  source: TableEndpoint,
  dest: TableEndpoint,
  options: { signal?: AbortSignal; onProgress?: ProgressListener } = {},
): Promise<TableVerifyReport> {
  const started = performance.now();
  await Promise.all([source.open(), dest.open()]);
  const a = source.schema;
  const b = dest.schema;
  for (const [ep, s] of [
    [source, a],
    [dest, b],
  ] as const) {
    if (s === undefined)
      throw new TongbuError('SOURCE_NOT_FOUND', `${ep.url}: table "${ep.table}" does not exist`);
  }
  if (a!.key.join('\u0000') !== b!.key.join('\u0000')) {
    throw new TongbuError(
      'SCHEMA_MISMATCH',
      `keys differ: (${a!.key.join(', ')}) in ${source.url}, (${b!.key.join(', ')}) in ${dest.url}`,
    );
  }
  const schema = commonSchema(a!, b!);
  const meter = new ProgressMeter(options.onProgress);
  meter.unit = 'rows';
  meter.start('verify');
  let reported = 0;
  const report: TableVerifyReport = {
    equal: true,
    source: source.url,
    destination: dest.url,
    missing: [],
    extra: [],
    different: [],
    counts: { missing: 0, extra: 0, different: 0 },
    sourceRows: 0,
    destRows: 0,
    columns: schema.columns.map((c) => c.name),
    onlyInSource: a!.columns
      .filter((c) => !b!.columns.some((o) => o.name === c.name))
      .map((c) => c.name),
    onlyInDest: b!.columns
      .filter((c) => !a!.columns.some((o) => o.name === c.name))
      .map((c) => c.name),
    method: '',
    checksumQueries: 0,
    rowsRead: 0,
    durationMs: 0,
  };
  const stats = await diffTables(source, dest, {
    schema,
    ...(options.signal ? { signal: options.signal } : {}),
    onProgress: (rows) => {
      meter.add(rows - reported, 0);
      reported = rows;
    },
    onDifferences: (diffs) => {
      for (const d of diffs) {
        const list =
          d.kind === 'missing'
            ? report.missing
            : d.kind === 'extra'
              ? report.extra
              : report.different;
        report.counts[d.kind === 'changed' ? 'different' : d.kind]++;
        if (list.length < LIST_LIMIT) list.push(keyText(schema, d.key));
      }
    },
  });
  meter.finish();
  report.equal = report.counts.missing + report.counts.extra + report.counts.different === 0;
  report.sourceRows = stats.sourceRows;
  report.destRows = stats.destRows;
  report.method = stats.method;
  report.checksumQueries = stats.checksumQueries;
  report.rowsRead = stats.rowsRead;
  report.durationMs = performance.now() - started;
  return report;
}
