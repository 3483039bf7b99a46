/**
 * The planner: from the listings of both sides and the saved state, what a
 * one-way run must do. Pure: it reads nothing and writes nothing, so it is
 * the same for every pair of endpoints and is property-tested on its own.
 */
import { parentKey, type Key } from '../core/key.js';
import type { Entry } from '../endpoints/endpoint.js';
import type { EntryFilter } from './filter.js';
import type { StateRow } from './sync-state.js';

/**
 * A file to copy. Shaped as a LocalCopyItem, so that a local copy takes
 * the plan's actions as they are: one object per file, not two.
 */
export interface CopyAction {
  readonly source: Entry;
  /** The destination has a file of the same size: content may be equal. */
  readonly compare: boolean;
}

export interface MetaAction {
  readonly entry: Entry;
  readonly dest: Entry;
}

export interface Plan {
  /** Destination entries in the way of an entry of another kind, deepest first. */
  readonly replaces: readonly Entry[];
  /** Directories to create, parents first. */
  readonly mkdirs: readonly Entry[];
  readonly copies: readonly CopyAction[];
  readonly links: readonly Entry[];
  /** Same content, other mtime or mode. */
  readonly metas: readonly MetaAction[];
  /** Extraneous destination entries (sync only), deepest first. */
  readonly deletes: readonly Entry[];
  /** How many entries are already in sync. */
  readonly unchanged: number;
  /**
   * Every source directory kept, deepest first, with the destination's
   * directory when there is one: directory times are set at the end.
   */
  readonly dirs: readonly { entry: Entry; dest: Entry | undefined }[];
  /** Destination entries counted by the mass-delete guard. */
  readonly destinationCount: number;
  /** Source entries that `copy` cannot place: a directory is in the way. */
  readonly blocked: readonly Entry[];
}

export interface PlanOptions {
  readonly mode: 'incremental' | 'full';
  readonly checksum: boolean;
  readonly deleteExtraneous: boolean;
  readonly filter: EntryFilter;
  /** False when the filter keeps everything (no --include/--exclude). */
  readonly filtered: boolean;
  /**
   * Files and links equal on both sides that the listings left out (a
   * paired walk); counted as unchanged and as destination entries.
   */
  readonly omitted?: number;
  /** With --include, directories are kept only for the entries they hold. */
  readonly pruneEmptyDirs: boolean;
  /** Two mtimes closer than this are equal (the coarser side's precision). */
  readonly mtimeToleranceMs: number;
}

/** The saved state of one key; looked up only where size and mtime disagree. */
export type StateLookup = (key: Key) => StateRow | undefined;

export function planSync(
  source: ReadonlyMap<Key, Entry>,
  dest: ReadonlyMap<Key, Entry>,
  state: StateLookup,
  options: PlanOptions,
): Plan {
  const sameTime = (a: number, b: number): boolean => Math.abs(a - b) <= options.mtimeToleranceMs;
  let kept: ReadonlyMap<Key, Entry> = source;
  if (options.filtered) {
    const filtered = new Map<Key, Entry>();
    for (const [key, entry] of source)
      if (options.filter(key, entry.kind)) filtered.set(key, entry);
    if (options.pruneEmptyDirs) pruneDirs(filtered);
    kept = filtered;
  }

  const replaces: Entry[] = [];
  const mkdirs: Entry[] = [];
  const copies: CopyAction[] = [];
  const links: Entry[] = [];
  const metas: MetaAction[] = [];
  let unchanged = options.omitted ?? 0;
  const dirs: { entry: Entry; dest: Entry | undefined }[] = [];
  const replacedDirs = new Set<Key>();
  const blocked: Entry[] = [];
  // Directories holding destination entries the filter protects: never
  // deleted or replaced, since they cannot be emptied.
  const protectedDirs = new Set<Key>();
  if (options.filtered) {
    for (const [key, d] of dest) {
      if (options.filter(key, d.kind)) continue;
      for (let p = parentKey(key); p !== '' && !protectedDirs.has(p); p = parentKey(p)) {
        protectedDirs.add(p);
      }
    }
  }

  for (const [key, entry] of kept) {
    const d = dest.get(key);
    if (entry.kind === 'dir') dirs.push({ entry, dest: d?.kind === 'dir' ? d : undefined });
    if (
      d?.kind === 'dir' &&
      entry.kind !== 'dir' &&
      (!options.deleteExtraneous || protectedDirs.has(key))
    ) {
      blocked.push(entry);
      continue;
    }
    if (d !== undefined && d.kind !== entry.kind) {
      replaces.push(d);
      if (d.kind === 'dir') replacedDirs.add(key);
    }
    if (d === undefined || d.kind !== entry.kind) {
      if (entry.kind === 'dir') mkdirs.push(entry);
      else if (entry.kind === 'symlink') links.push(entry);
      else copies.push({ source: entry, compare: false });
      continue;
    }
    switch (entry.kind) {
      case 'dir':
        if (entry.mode !== d.mode) metas.push({ entry, dest: d });
        else unchanged++;
        break;
      case 'symlink':
        if (entry.target !== d.target) links.push(entry);
        else if (!sameTime(entry.mtimeMs, d.mtimeMs)) metas.push({ entry, dest: d });
        else unchanged++;
        break;
      case 'file': {
        if (entry.size !== d.size) {
          copies.push({ source: entry, compare: false });
          break;
        }
        const known =
          options.mode === 'incremental' &&
          !options.checksum &&
          (sameTime(entry.mtimeMs, d.mtimeMs) || matchesState(state(key), entry, d));
        if (!known) copies.push({ source: entry, compare: true });
        else if (entry.mode !== d.mode) metas.push({ entry, dest: d });
        else unchanged++;
        break;
      }
    }
  }

  const deletes: Entry[] = [];
  const blockedKeys = new Set(blocked.map((e) => e.key));
  let destinationCount = options.omitted ?? 0;
  for (const [key, d] of dest) {
    if (!options.filter(key, d.kind)) continue;
    destinationCount++;
    if (kept.has(key) && !blockedKeys.has(key)) continue;
    if (blockedKeys.has(key) || isBelow(key, blockedKeys)) continue;
    if (d.kind === 'dir' && protectedDirs.has(key)) continue;
    if (options.deleteExtraneous || isBelow(key, replacedDirs)) deletes.push(d);
  }

  const deepestFirst = (a: { key: Key }, b: { key: Key }): number => depth(b.key) - depth(a.key);
  const parentsFirst = (a: Entry, b: Entry): number => depth(a.key) - depth(b.key);
  return {
    replaces: replaces.sort(deepestFirst),
    mkdirs: mkdirs.sort(parentsFirst),
    copies,
    links,
    metas,
    deletes: deletes.sort(deepestFirst),
    unchanged,
    dirs: dirs.sort((a, b) => deepestFirst(a.entry, b.entry)),
    destinationCount,
    blocked,
  };
}

/** The saved row says both sides still hold what the last run synced. */
function matchesState(row: StateRow | undefined, entry: Entry, dest: Entry): boolean {
  return (
    row !== undefined &&
    row.kind === 'file' &&
    row.size === entry.size &&
    row.srcMtimeMs === entry.mtimeMs &&
    row.dstMtimeMs === dest.mtimeMs
  );
}

/** Drops directories that hold no kept file or link. */
function pruneDirs(kept: Map<Key, Entry>): void {
  const needed = new Set<Key>();
  for (const [key, entry] of kept) {
    if (entry.kind === 'dir') continue;
    for (let p = parentKey(key); p !== '' && !needed.has(p); p = parentKey(p)) needed.add(p);
  }
  for (const [key, entry] of kept) if (entry.kind === 'dir' && !needed.has(key)) kept.delete(key);
}

function isBelow(key: Key, dirs: ReadonlySet<Key>): boolean {
  if (dirs.size === 0) return false;
  for (let p = parentKey(key); p !== ''; p = parentKey(p)) if (dirs.has(p)) return true;
  return false;
}

function depth(key: Key): number {
  let n = 0;
  for (let i = key.indexOf('/'); i >= 0; i = key.indexOf('/', i + 1)) n++;
  return n;
}
