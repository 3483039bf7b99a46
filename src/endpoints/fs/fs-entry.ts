/** Entries of the local filesystem, as the walker and the endpoint see them. */
import type * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { fromSystemError, TongbuError } from '../../core/errors.js';
import type { Key } from '../../core/key.js';
import type { WorkerError } from './fs-worker-protocol.js';
import type { Entry, EntryKind } from '../endpoint.js';

/** Temp files of interrupted writes start with this; `cleanup` removes them. */
export const TEMP_PREFIX = '.tongbu-tmp-';

export async function statEntry(key: Key, p: string): Promise<Entry> {
  const stat = await fsp.lstat(p);
  return entryOf(key, stat, stat.isSymbolicLink() ? await fsp.readlink(p) : undefined);
}

export function entryOf(key: Key, stat: fs.Stats, target: string | undefined): Entry {
  const kind: EntryKind = stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? 'symlink' : 'file';
  return {
    key,
    kind,
    size: kind === 'file' ? stat.size : 0,
    mtimeMs: stat.mtimeMs,
    mode: kind === 'symlink' ? 0 : stat.mode & 0o7777,
    ...(target === undefined ? {} : { target }),
  };
}

export function workerErrorToTongbu(error: WorkerError, action: string): TongbuError {
  switch (error.code) {
    case 'SYSTEM':
      return fromSystemError(
        Object.assign(new Error(error.message), { code: error.errno }),
        error.path,
        `cannot ${error.action}`,
      );
    case 'FILE_CHANGED':
      return new TongbuError('FILE_CHANGED', `${error.path} changed while it was read`, {
        data: { path: error.path },
      });
    case 'HASH_MISMATCH':
      return new TongbuError('HASH_MISMATCH', `${error.path}: content does not match its hash`, {
        data: { path: error.path },
      });
    case 'ABORTED':
      return new TongbuError('ABORTED', `${action} ${error.path}: aborted`);
  }
}
