/** What a run did (or, with --dry-run, would do), for the CLI and JSON output. */
import type { ErrorCode } from '../core/errors.js';
import type { CommitInfo, Entry } from '../endpoints/endpoint.js';
import type { Plan } from './planner.js';
import type { SyncOptions } from './sync-options.js';

export interface PlannedAction {
  readonly action: 'mkdir' | 'copy' | 'compare' | 'link' | 'meta' | 'delete' | 'replace';
  readonly key: string;
  readonly size?: number;
}

export interface SyncSummary {
  command: 'sync' | 'copy';
  source: string;
  destination: string;
  mode: SyncOptions['mode'];
  dryRun: boolean;
  files: {
    copied: number;
    updated: number;
    deleted: number;
    unchanged: number;
    dirsCreated: number;
    links: number;
  };
  bytes: { copied: number };
  totals: { files: number; bytes: number };
  removedTemps: number;
  errors: { key: string; code: ErrorCode; message: string }[];
  warnings: string[];
  durationMs: number;
  plan?: PlannedAction[];
  /** The commit made on a destination that commits atomically. */
  commit?: CommitInfo;
}

export function emptySummary(
  command: 'sync' | 'copy',
  source: string,
  destination: string,
  options: SyncOptions,
): SyncSummary {
  return {
    command,
    source,
    destination,
    mode: options.mode,
    dryRun: options.dryRun,
    files: { copied: 0, updated: 0, deleted: 0, unchanged: 0, dirsCreated: 0, links: 0 },
    bytes: { copied: 0 },
    totals: { files: 0, bytes: 0 },
    removedTemps: 0,
    errors: [],
    warnings: [],
    durationMs: 0,
  };
}

export function planActions(plan: Plan, deletes: readonly Entry[]): PlannedAction[] {
  return [
    ...plan.replaces.map((e) => ({ action: 'replace' as const, key: e.key })),
    ...plan.mkdirs.map((e) => ({ action: 'mkdir' as const, key: e.key })),
    ...plan.copies.map((c) => ({
      action: c.compare ? ('compare' as const) : ('copy' as const),
      key: c.source.key,
      size: c.source.size,
    })),
    ...plan.links.map((e) => ({ action: 'link' as const, key: e.key })),
    ...plan.metas.map((m) => ({ action: 'meta' as const, key: m.entry.key })),
    ...deletes.map((e) => ({ action: 'delete' as const, key: e.key })),
  ];
}
