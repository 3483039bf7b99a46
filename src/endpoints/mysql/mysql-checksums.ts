/**
 * Range checksums, portable (`rowHash` sums, equal to canonical.ts
 * `checksumRows`) and native (CRC32 sums, comparable only between equal
 * native column types). Ranges run concurrently over the read pool, one
 * query per range; when there are fewer ranges than sessions and the key
 * is a single integer, each range is cut into parts so every core works.
 * JSON columns have no canonical text in SQL: those checksums read the rows
 * and hash them in JS. An abort kills the running queries.
 */
import { TongbuError } from '../../core/errors.js';
import { checksumRows, type KeyRange, type Row, type SegmentChecksum } from '../table/canonical.js';
import type { Column } from '../table/table-schema.js';
import { nativeSumSql, rowHashSumSql } from './mysql-checksum-sql.js';
import { conditions, nativeOf, readRows, schemaColumn, type TableContext } from './mysql-read.js';
import { whereClause } from './mysql-sql.js';
import { integerKey, integerSplit } from './mysql-split.js';
import { quoteId, type NativeColumn } from './mysql-types.js';
import { asText } from './mysql-values.js';

export interface ChecksumOptions {
  readonly signal?: AbortSignal;
  readonly native?: boolean;
}

export async function checksums(
  ctx: TableContext,
  columns: readonly Column[],
  ranges: readonly KeyRange[],
  options: ChecksumOptions = {},
): Promise<SegmentChecksum[]> {
  const cols = columns.map((c) => schemaColumn(ctx, c.name));
  const natives = cols.map((c) => nativeOf(ctx, c));
  const sum =
    options.native === true
      ? nativeSumSql(cols, natives, ctx.flavor, ctx.version)
      : rowHashSumSql(cols, natives);
  const signal = options.signal;
  if (signal?.aborted === true) throw aborted(ctx, signal);
  if (sum === undefined) {
    return runLimited(ctx.pool.size, ranges, (range) => checksumInJs(ctx, cols, range, signal));
  }
  const guard = zeroDateGuard(cols, natives);
  const running = new Set<number>();
  const onAbort = () => {
    for (const id of running) ctx.pool.kill(id).catch(() => undefined);
  };
  signal?.addEventListener('abort', onAbort);
  try {
    const parts = await partsOf(ctx, ranges);
    const results = await runLimited(ctx.pool.size, parts.flat(), (range) =>
      ctx.pool.use(async (session) => {
        if (signal !== undefined && isAborted(signal)) throw aborted(ctx, signal);
        running.add(session.threadId);
        try {
          const sql = `SELECT COUNT(*), ${sum}${guard.sql} FROM ${ctx.sqlName}${whereClause(conditions(ctx, range))}`;
          const raw = await session.query(sql, `checksum ${ctx.display}`);
          const row = raw[0] ?? [];
          guard.check(row.slice(2), ctx);
          return {
            count: Number(row[0] ?? 0),
            sum: row[1] === null || row[1] === undefined ? 0n : BigInt(asText(row[1])),
          };
        } finally {
          running.delete(session.threadId);
        }
      }),
    );
    // A killed statement may still end normally (SLEEP returns early): honour the abort anyway.
    if (signal !== undefined && isAborted(signal)) throw aborted(ctx, signal);
    const out: SegmentChecksum[] = [];
    let i = 0;
    for (const p of parts) {
      let count = 0;
      let total = 0n;
      for (let j = 0; j < p.length; j++, i++) {
        count += results[i]!.count;
        total += results[i]!.sum;
      }
      out.push({ count, sum: total });
    }
    return out;
  } catch (err) {
    // The signal may have fired while the queries ran.
    if (signal !== undefined && isAborted(signal)) throw aborted(ctx, signal);
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

function aborted(ctx: TableContext, signal: AbortSignal): TongbuError {
  return new TongbuError('ABORTED', `${ctx.display}: checksum aborted`, { cause: signal.reason });
}

/** Each range, or its parts when there are sessions to spare. */
async function partsOf(ctx: TableContext, ranges: readonly KeyRange[]): Promise<KeyRange[][]> {
  const want = Math.ceil(ctx.pool.size / Math.max(1, ranges.length));
  if (!integerKey(ctx) || want < 2) return ranges.map((r) => [r]);
  return Promise.all(
    ranges.map(async (range) => {
      const points = await integerSplit(ctx, want, range, false);
      const bounds = [range.from, ...points, range.to];
      const out: KeyRange[] = [];
      for (let i = 0; i + 1 < bounds.length; i++) {
        const from = bounds[i];
        const to = bounds[i + 1];
        out.push({ ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) });
      }
      return out;
    }),
  );
}

async function checksumInJs(
  ctx: TableContext,
  cols: readonly Column[],
  range: KeyRange,
  signal: AbortSignal | undefined,
): Promise<SegmentChecksum> {
  let count = 0;
  let sum = 0n;
  const options = { range, batchRows: 20_000, ...(signal !== undefined ? { signal } : {}) };
  for await (const batch of readRows(ctx, cols, options)) {
    const part = checksumRows(cols, batch as Iterable<Row>);
    count += part.count;
    sum += part.sum;
  }
  return { count, sum };
}

/** Zero dates have no canonical text: count them alongside, and refuse. */
function zeroDateGuard(
  cols: readonly Column[],
  natives: readonly NativeColumn[],
): { sql: string; check: (values: unknown[], ctx: TableContext) => void } {
  const dated = cols
    .map((c, i) => ({ c, n: natives[i]! }))
    .filter(({ c }) => c.type === 'date' || c.type === 'timestamp' || c.type === 'timestamptz');
  const sql = dated
    .map(({ n }) => `, SUM(MONTH(${quoteId(n.name)})=0 OR DAYOFMONTH(${quoteId(n.name)})=0)`)
    .join('');
  return {
    sql,
    check: (values, ctx) => {
      dated.forEach(({ c }, i) => {
        const v = values[i];
        if (v !== null && v !== undefined && Number(v) > 0) {
          throw new TongbuError(
            'BAD_ARGUMENT',
            `${ctx.display}: column "${c.name}" holds zero dates (0000-00-00), which have no canonical form (fix them, or leave such rows out with where=)`,
            { data: { column: c.name } },
          );
        }
      });
    },
  };
}

/** Runs `fn` over `items` with at most `limit` at a time; results in order. */
async function runLimited<T, R>(
  limit: number,
  items: readonly T[],
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
