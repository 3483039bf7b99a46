/**
 * --include / --exclude globs. A pattern without a slash matches a name at
 * any depth; excluding a directory excludes everything below it. With
 * includes, only files and links that match one (or lie below a matching
 * directory) are kept; directories are kept for what they contain.
 */
import { createRequire } from 'node:module';
import type picomatchType from 'picomatch';
import type { EntryKind } from '../endpoints/endpoint.js';
import { parentKey, type Key } from '../core/key.js';

export type EntryFilter = (key: Key, kind: EntryKind) => boolean;

const require = createRequire(import.meta.url);

export function createFilter(include: readonly string[], exclude: readonly string[]): EntryFilter {
  if (include.length === 0 && exclude.length === 0) return () => true;
  // Loaded only for a run with patterns.
  const picomatch = require('picomatch') as typeof picomatchType;
  const options = { dot: true, basename: true } as const;
  const excluded = exclude.length > 0 ? picomatch([...exclude], options) : () => false;
  const included = include.length > 0 ? picomatch([...include], options) : undefined;
  const excludedDir = new Map<Key, boolean>();
  const includedDir = new Map<Key, boolean>();

  const underExcluded = (key: Key): boolean => {
    if (key === '') return false;
    let hit = excludedDir.get(key);
    if (hit === undefined) {
      hit = excluded(key) || underExcluded(parentKey(key));
      excludedDir.set(key, hit);
    }
    return hit;
  };
  const underIncluded = (key: Key): boolean => {
    if (key === '' || !included) return false;
    let hit = includedDir.get(key);
    if (hit === undefined) {
      hit = included(key) || underIncluded(parentKey(key));
      includedDir.set(key, hit);
    }
    return hit;
  };

  return (key, kind) => {
    if (excluded(key) || underExcluded(parentKey(key))) return false;
    if (!included || kind === 'dir') return true;
    return included(key) || underIncluded(parentKey(key));
  };
}
