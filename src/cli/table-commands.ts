/**
 * sync, copy, bisync and verify when an endpoint is a table URL
 * (sqlite:, postgres://, mysql://). Same flags, same exit codes as for
 * directories; the summary counts rows.
 */
import { ERROR_TABLE } from '../core/errors.js';
import type { ProgressListener } from '../core/progress.js';
import { openSiblingTable, openTable } from '../endpoints/table/open-table.js';
import { parseTableUrl } from '../endpoints/table/table-url.js';
import type { SyncOptions } from '../sync/sync-options.js';
import { bisyncTables, type TableBisyncSummary } from '../sync/table-bisync.js';
import { syncTable, type TableSyncSummary } from '../sync/table-sync.js';
import { verifyTables, type TableVerifyReport } from '../sync/table-verify.js';
import { formatDuration } from './format.js';

export interface TableCommandContext {
  readonly command: 'sync' | 'copy' | 'verify' | 'bisync';
  readonly src: string;
  readonly dst: string;
  readonly options: SyncOptions;
  readonly json: boolean;
  readonly quiet: boolean;
  readonly signal: AbortSignal;
  readonly onProgress?: ProgressListener;
}

export async function tableCommand(ctx: TableCommandContext): Promise<number> {
  const a = await openTable(ctx.src);
  const b = await openTable(ctx.dst);
  try {
    if (ctx.command === 'verify') {
      const report = await verifyTables(a, b, {
        signal: ctx.signal,
        ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
      });
      printVerify(report, ctx);
      return report.equal ? 0 : ERROR_TABLE.DIFFERENT.exit;
    }
    if (ctx.command === 'bisync') {
      const summary = await bisyncTables({
        a,
        b,
        policy: ctx.options.conflict,
        ...(ctx.options.newerColumn !== undefined ? { newerColumn: ctx.options.newerColumn } : {}),
        openConflictTable: (side) => {
          const url = parseTableUrl(side === 'a' ? ctx.src : ctx.dst);
          return openSiblingTable(url, `${url.table}_conflicts`);
        },
        dryRun: ctx.options.dryRun,
        force: ctx.options.force,
        statePath: ctx.options.state,
        ...(ctx.options.maxDelete !== undefined ? { maxDelete: ctx.options.maxDelete } : {}),
      });
      printBisync(summary, ctx);
      return 0;
    }
    const summary = await syncTable({
      command: ctx.command,
      source: a,
      dest: b,
      mode: ctx.options.mode,
      ...(ctx.options.cursor !== undefined ? { cursor: ctx.options.cursor } : {}),
      dryRun: ctx.options.dryRun,
      force: ctx.options.force,
      statePath: ctx.options.state,
      ...(ctx.options.maxDelete !== undefined ? { maxDelete: ctx.options.maxDelete } : {}),
      signal: ctx.signal,
      ...(ctx.onProgress ? { onProgress: ctx.onProgress } : {}),
    });
    printSync(summary, ctx);
    return 0;
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

function printSync(s: TableSyncSummary, ctx: TableCommandContext): void {
  if (ctx.json) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  if (ctx.quiet) return;
  for (const p of s.plan ?? []) process.stdout.write(`${p.action.padEnd(8)} ${p.key}\n`);
  const r = s.rows;
  const how =
    s.method === 'create'
      ? 'created the table; '
      : s.method === 'cursor'
        ? `since ${s.cursor?.column} ${s.cursor?.from ?? ''}; `
        : '';
  process.stdout.write(
    `${s.command}${s.dryRun ? ' (dry run, nothing written)' : ''}: ${how}${r.inserted} rows inserted, ` +
      `${r.updated} updated, ${r.deleted} deleted, ${r.unchanged} unchanged in ${formatDuration(s.durationMs)}\n`,
  );
}

function printBisync(s: TableBisyncSummary, ctx: TableCommandContext): void {
  if (ctx.json) {
    process.stdout.write(`${JSON.stringify(s)}\n`);
    return;
  }
  if (ctx.quiet) return;
  for (const c of s.conflicts) {
    process.stdout.write(
      `conflict  ${c.key}: ${c.winner === 'a' ? 'first' : 'second'} side wins${c.kept ? `, the other row kept in the conflict table` : ''}\n`,
    );
  }
  const side = (x: TableBisyncSummary['toA']): string =>
    `${x.inserted} inserted, ${x.updated} updated, ${x.deleted} deleted`;
  process.stdout.write(
    `bisync${s.dryRun ? ' (dry run, nothing written)' : ''}${s.firstRun ? ' (first run)' : ''}: ` +
      `to ${s.a}: ${side(s.toA)}; to ${s.b}: ${side(s.toB)}; ${s.merged} merged, ` +
      `${s.conflicts.length} conflicts in ${formatDuration(s.durationMs)}\n`,
  );
}

function printVerify(r: TableVerifyReport, ctx: TableCommandContext): void {
  if (ctx.json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return;
  }
  if (!ctx.quiet) {
    for (const k of r.missing) process.stdout.write(`missing   ${k}\n`);
    for (const k of r.extra) process.stdout.write(`extra     ${k}\n`);
    for (const k of r.different) process.stdout.write(`different ${k}\n`);
    if (r.onlyInSource.length + r.onlyInDest.length > 0) {
      process.stdout.write(
        `not compared (on one side only): ${[...r.onlyInSource, ...r.onlyInDest].join(', ')}\n`,
      );
    }
  }
  const c = r.counts;
  process.stdout.write(
    r.equal
      ? `verify: equal, ${r.sourceRows} rows, ${r.columns.length} columns compared (${r.method}) in ${formatDuration(r.durationMs)}\n`
      : `verify: DIFFERENT: ${c.missing} missing, ${c.extra} extra, ${c.different} different (${r.sourceRows} vs ${r.destRows} rows) in ${formatDuration(r.durationMs)}\n`,
  );
}
