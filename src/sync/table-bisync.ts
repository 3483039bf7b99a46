/**
 * Bidirectional table sync: a three-way comparison by key of both tables
 * against the base (the rows both sides held after the last bisync, kept in
 * the state file). A change on one side propagates to the other; a row
 * changed on both sides in different columns is merged column by column;
 * a true conflict is settled by the policy and recorded — the losing row is
 * kept in a conflict table with `keep-both`, and `fail` writes nothing.
 */
import { TongbuError } from '../core/errors.js';
import {
  canonicalTimestamp,
  compareValues,
  keyId,
  keyText,
  rowHashText,
  rowKey,
  valueText,
  type KeyTuple,
  type Row,
} from '../endpoints/table/canonical.js';
import type { TableEndpoint } from '../endpoints/table/table-endpoint.js';
import {
  checkWritable,
  commonSchema,
  keyIndexes,
  type TableSchema,
} from '../endpoints/table/table-schema.js';
import { checkDeleteLimit } from './delete-guard.js';
import { projection } from './table-diff.js';
import { TableSyncState, type ConflictRecord } from './table-state.js';

export const CONFLICT_POLICIES = ['newer', 'source', 'target', 'keep-both', 'fail'] as const;
export type ConflictPolicy = (typeof CONFLICT_POLICIES)[number];

export interface TableBisyncRequest {
  readonly a: TableEndpoint;
  readonly b: TableEndpoint;
  readonly policy: ConflictPolicy;
  /** The timestamp column `newer` compares; guessed from common names when absent. */
  readonly newerColumn?: string;
  /** Opens the conflict table beside side `a` or `b` (keep-both). */
  readonly openConflictTable: (side: 'a' | 'b') => Promise<TableEndpoint>;
  readonly dryRun: boolean;
  readonly maxDelete?: string;
  readonly force: boolean;
  readonly statePath: string;
}

interface SideCounts {
  inserted: number;
  updated: number;
  deleted: number;
}

export interface TableBisyncSummary {
  a: string;
  b: string;
  dryRun: boolean;
  /** No base yet: the first run only adds what a side lacks and settles differing rows by the policy. */
  firstRun: boolean;
  toA: SideCounts;
  toB: SideCounts;
  /** Rows changed on both sides in different columns, merged. */
  merged: number;
  conflicts: { key: string; winner: 'a' | 'b'; kept?: 'a' | 'b' }[];
  rows: number;
  durationMs: number;
}

const NEWER_GUESSES = ['updated_at', 'modified_at', 'updated', 'mtime', 'last_modified'];

export async function bisyncTables(req: TableBisyncRequest): Promise<TableBisyncSummary> {
  const started = performance.now();
  await Promise.all([req.a.open(), req.b.open()]);
  const sa = req.a.schema;
  const sb = req.b.schema;
  if (sa === undefined && sb === undefined) {
    throw new TongbuError(
      'SOURCE_NOT_FOUND',
      `neither ${req.a.url} nor ${req.b.url} has the table`,
    );
  }
  // A side without the table gets it created from the other.
  for (const [side, other] of [
    [req.a, sb],
    [req.b, sa],
  ] as const) {
    if (side.schema === undefined && !req.dryRun) {
      const w = await side.beginWrite({ create: other! });
      await w.commit();
      await side.close();
      await side.open();
    }
  }
  const schemaA = req.a.schema ?? sb!;
  const schemaB = req.b.schema ?? sa!;
  checkWritable(schemaA, schemaB, { source: req.a.url, dest: req.b.url });
  checkWritable(schemaB, schemaA, { source: req.b.url, dest: req.a.url });
  const schema = commonSchema(schemaA, schemaB);
  const newerIdx = newerColumn(req, schema);

  const state = TableSyncState.open(req.statePath, req.a.url, req.b.url, { readOnly: req.dryRun });
  try {
    const firstRun = !state.hasBase();
    const base = state.loadBase();
    const [rowsA, rowsB] = await Promise.all([
      readAll(req.a, schemaA, schema, req.a.schema !== undefined),
      readAll(req.b, schemaB, schema, req.b.schema !== undefined),
    ]);
    const summary: TableBisyncSummary = {
      a: req.a.url,
      b: req.b.url,
      dryRun: req.dryRun,
      firstRun,
      toA: { inserted: 0, updated: 0, deleted: 0 },
      toB: { inserted: 0, updated: 0, deleted: 0 },
      merged: 0,
      conflicts: [],
      rows: 0,
      durationMs: 0,
    };
    const plan = { toA: new Changes(), toB: new Changes(), keptA: [] as Row[], keptB: [] as Row[] };
    const newBase = new Map<string, Row>();
    const records: ConflictRecord[] = [];
    const text = (r: Row | undefined): string | undefined =>
      r === undefined ? undefined : rowHashText(schema.columns, r);
    const idx = keyIndexes(schema);
    const keys = new Set([...rowsA.keys(), ...rowsB.keys(), ...base.keys()]);
    const now = Date.now();
    for (const id of keys) {
      const ra = rowsA.get(id);
      const rb = rowsB.get(id);
      const o = base.get(id);
      const [ha, hb, ho] = [text(ra), text(rb), text(o)];
      let result: Row | undefined;
      if (ha === hb) {
        result = ra;
      } else if (!firstRun && ha === ho) {
        result = rb;
      } else if (!firstRun && hb === ho) {
        result = ra;
      } else if (firstRun && (ra === undefined || rb === undefined)) {
        // No base yet: a row only one side has is added to the other.
        result = ra ?? rb;
      } else {
        const merged = ra && rb && o ? mergeColumns(schema, ra, rb, o) : undefined;
        if (merged !== undefined) {
          result = merged;
          summary.merged++;
          records.push({
            atMs: now,
            key: rowKey(merged, idx),
            source: ra!,
            dest: rb!,
            base: o ?? null,
            resolution: 'merged',
          });
        } else {
          const winner = decide(req.policy, ra, rb, newerIdx);
          result = winner === 'a' ? ra : rb;
          const loser = winner === 'a' ? rb : ra;
          const key = rowKey((ra ?? rb)!, idx);
          const kept =
            req.policy === 'keep-both' && loser !== undefined
              ? winner === 'a'
                ? 'b'
                : 'a'
              : undefined;
          if (kept === 'a') plan.keptA.push(loser!);
          if (kept === 'b') plan.keptB.push(loser!);
          summary.conflicts.push({ key: keyText(schema, key), winner, ...(kept ? { kept } : {}) });
          records.push({
            atMs: now,
            key,
            source: ra ?? null,
            dest: rb ?? null,
            base: o ?? null,
            resolution: `${req.policy}: ${winner === 'a' ? 'first' : 'second'} side wins${kept ? ', loser kept' : ''}`,
          });
        }
      }
      const hr = text(result);
      if (hr !== ha) plan.toA.add(ra, result, idx, summary.toA);
      if (hr !== hb) plan.toB.add(rb, result, idx, summary.toB);
      if (result !== undefined) newBase.set(id, result);
    }
    summary.rows = newBase.size;
    if (req.policy === 'fail' && summary.conflicts.length > 0) {
      const shown = summary.conflicts
        .slice(0, 20)
        .map((c) => c.key)
        .join(', ');
      throw new TongbuError(
        'CONFLICT',
        `${summary.conflicts.length} rows changed on both sides (--conflict fail): ${shown}; nothing was written`,
        { data: { keys: summary.conflicts.map((c) => c.key) } },
      );
    }
    checkDeleteLimit(summary.toA.deleted, rowsA.size, req, req.a.url);
    checkDeleteLimit(summary.toB.deleted, rowsB.size, req, req.b.url);
    if (!req.dryRun) {
      await keepLosers(req, schema, 'a', plan.keptA);
      await keepLosers(req, schema, 'b', plan.keptB);
      await plan.toA.apply(req.a, schema);
      await plan.toB.apply(req.b, schema);
      state.replaceBase(newBase);
      state.recordConflicts(records);
    }
    summary.durationMs = performance.now() - started;
    return summary;
  } finally {
    state.close();
  }
}

/** Upserts and deletes for one side. */
class Changes {
  readonly upserts: Row[] = [];
  readonly deletes: KeyTuple[] = [];

  add(
    current: Row | undefined,
    wanted: Row | undefined,
    idx: readonly number[],
    counts: SideCounts,
  ): void {
    if (wanted === undefined) {
      if (current !== undefined) {
        this.deletes.push(rowKey(current, idx));
        counts.deleted++;
      }
      return;
    }
    this.upserts.push(wanted);
    if (current === undefined) counts.inserted++;
    else counts.updated++;
  }

  async apply(ep: TableEndpoint, schema: TableSchema): Promise<void> {
    if (this.upserts.length === 0 && this.deletes.length === 0) return;
    const w = await ep.beginWrite();
    try {
      for (let i = 0; i < this.upserts.length; i += 5000)
        await w.upsert(schema.columns, this.upserts.slice(i, i + 5000));
      for (let i = 0; i < this.deletes.length; i += 5000)
        await w.delete(this.deletes.slice(i, i + 5000));
      await w.commit();
    } catch (err) {
      await w.rollback().catch(() => undefined);
      throw err;
    }
  }
}

/** Both sides changed the row: take each column from the side that changed it, unless both did. */
function mergeColumns(schema: TableSchema, a: Row, b: Row, o: Row): Row | undefined {
  const out: Row[number][] = [];
  for (let i = 0; i < schema.columns.length; i++) {
    const t = schema.columns[i]!.type;
    const s = (v: Row[number]): string => (v === null ? '\u0000' : valueText(t, v));
    const [va, vb, vo] = [s(a[i]!), s(b[i]!), s(o[i]!)];
    if (va === vb || vb === vo) out.push(a[i]!);
    else if (va === vo) out.push(b[i]!);
    else return undefined;
  }
  return out;
}

function decide(
  policy: ConflictPolicy,
  ra: Row | undefined,
  rb: Row | undefined,
  newerIdx: number | undefined,
): 'a' | 'b' {
  if (policy === 'target') return 'b';
  if ((policy === 'newer' || policy === 'keep-both') && newerIdx !== undefined) {
    const va = ra?.[newerIdx] ?? null;
    const vb = rb?.[newerIdx] ?? null;
    // A deleted row has no time: the surviving change wins over a delete.
    if (ra === undefined) return 'b';
    if (rb === undefined) return 'a';
    // Ties (and NULLs) go to the first side: deterministic.
    return compareValues(vb, va) > 0 ? 'b' : 'a';
  }
  return 'a';
}

function newerColumn(req: TableBisyncRequest, schema: TableSchema): number | undefined {
  const name =
    req.newerColumn ??
    schema.columns.find(
      (c) => NEWER_GUESSES.includes(c.name) && (c.type === 'timestamp' || c.type === 'timestamptz'),
    )?.name;
  if (name === undefined) {
    if (req.policy === 'newer') {
      throw new TongbuError(
        'BAD_ARGUMENT',
        '--conflict newer needs a timestamp column to compare: pass --newer-column COLUMN',
      );
    }
    return undefined;
  }
  const i = schema.columns.findIndex((c) => c.name === name);
  if (i < 0)
    throw new TongbuError('BAD_ARGUMENT', `--newer-column ${name}: no such column on both sides`);
  return i;
}

async function readAll(
  ep: TableEndpoint,
  own: TableSchema,
  schema: TableSchema,
  exists: boolean,
): Promise<Map<string, Row>> {
  const out = new Map<string, Row>();
  if (!exists) return out;
  const pick = projection(own, schema.columns);
  const idx = keyIndexes(schema);
  for await (const batch of ep.scan({ batchRows: 10_000 })) {
    for (const r of batch) {
      const row = pick(r);
      out.set(keyId(rowKey(row, idx)), row);
    }
  }
  return out;
}

/** keep-both: the losing rows go to `<table>_conflicts` on the loser's side. */
async function keepLosers(
  req: TableBisyncRequest,
  schema: TableSchema,
  side: 'a' | 'b',
  rows: readonly Row[],
): Promise<void> {
  if (rows.length === 0) return;
  const table = await req.openConflictTable(side);
  await table.open();
  try {
    const conflictSchema: TableSchema = {
      key: ['conflict_id'],
      columns: [
        { name: 'conflict_id', type: 'text', nullable: false, precision: 200 },
        { name: 'detected_at', type: 'timestamptz', nullable: false },
        ...schema.columns.map((c) => ({ ...c, nullable: true })),
      ],
    };
    const w = await table.beginWrite(table.schema === undefined ? { create: conflictSchema } : {});
    const at = `${canonicalTimestamp(new Date().toISOString().slice(0, 23))}+00`;
    const idx = keyIndexes(schema);
    try {
      await w.upsert(
        conflictSchema.columns,
        rows.map((r) => [`${keyText(schema, rowKey(r, idx))}@${at}`, at, ...r]),
      );
      await w.commit();
    } catch (err) {
      await w.rollback().catch(() => undefined);
      throw err;
    }
  } finally {
    await table.close();
  }
}
