/** Entries of the local filesystem, as the walker and the endpoint see them. */
import { randomBytes } from 'node:crypto';
import type * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { fromSystemError, TongbuError } from '../../core/errors.js';
import { quoteBytes, type Key } from '../../core/key.js';
import { TEMP_PREFIX, tempPath } from './fs-temp.js';
import type { WalkBatch, WorkerError } from './fs-worker-protocol.js';
import type { Entry, EntryKind } from '../endpoint.js';

/** This process's part of its temp file names (see tempPath). */
export const TEMP_TAG = `${TEMP_PREFIX}${randomBytes(6).toString('hex')}-`;
let tempCounter = 0;

/** A number for a new temp file, unique in this process. */
export function nextTemp(): number {
  return tempCounter++;
}

/** A new temp file name in `dir`, unique in this process and across processes. */
export function tempPathIn(dir: string): string {
  return tempPath(dir, TEMP_TAG, nextTemp());
}

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
    case 'NOT_UTF8':
      return new TongbuError(
        'KEY_NOT_UTF8',
        `name is not valid UTF-8, refused: ${quoteBytes(Buffer.concat([Buffer.from(`${error.path}/`), error.raw]))}`,
        { data: { path: error.path } },
      );
    case 'SPECIAL':
      return new TongbuError(
        'BAD_ARGUMENT',
        `skipped special file ${error.path} (not a file, directory or link)`,
        {
          data: { path: error.path },
        },
      );
    case 'ABORTED':
      return new TongbuError('ABORTED', `${action} ${error.path}: aborted`);
  }
}

const KINDS: readonly EntryKind[] = ['file', 'dir', 'symlink'];

/**
 * Entries from a worker's packed walk batch. A mode is a small integer:
 * made one (`| 0`), it is kept in the entry instead of in a heap number of
 * its own, which a tree of millions of entries notices.
 */
export function unpackEntries(batch: WalkBatch): Entry[] {
  const out: Entry[] = new Array<Entry>(batch.keys.length);
  const { keys, nums } = batch;
  for (let i = 0; i < keys.length; i++) {
    out[i] = {
      key: keys[i]!,
      kind: KINDS[nums[4 * i]!]!,
      size: nums[4 * i + 1]!,
      mtimeMs: nums[4 * i + 2]!,
      mode: nums[4 * i + 3]! | 0,
    };
  }
  batch.links.forEach((index, j) => {
    out[index] = { ...out[index]!, target: batch.targets[j]! };
  });
  return out;
}

/**
 * A time for utimes: seconds as a number keeps sub-millisecond precision,
 * but Node reads a negative number as "now", so times before 1970 go as a
 * Date (whole milliseconds).
 */
export function fsTime(ms: number): number | Date {
  return ms >= 0 ? ms / 1000 : new Date(ms);
}
