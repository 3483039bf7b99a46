/**
 * Walks a directory tree with synchronous calls (a readdir and an lstat cost
 * a few microseconds each; the event loop would cost more) and yields entries
 * in batches. Nothing is followed: a symlink is listed as a link.
 */
import * as fs from 'node:fs';
import { fromSystemError, TongbuError } from '../../core/errors.js';
import { decodeName, quoteBytes } from '../../core/key.js';
import type { Entry, ListOptions } from '../endpoint.js';
import { entryOf, TEMP_PREFIX } from './fs-entry.js';

const BATCH = 2048;

export interface WalkOptions extends ListOptions {
  /** Receives the path of each leftover temp file; they are not listed. */
  readonly onTemp?: (path: string) => void;
}

export function* walkTree(root: string, options: WalkOptions): Iterable<Entry[]> {
  const problem = (err: TongbuError): void => {
    if (!options.onProblem) throw err;
    options.onProblem(err);
  };
  const stack: string[] = [''];
  let batch: Entry[] = [];
  while (stack.length > 0) {
    options.signal?.throwIfAborted();
    const dirKey = stack.pop()!;
    const dirPath = dirKey === '' ? root : `${root}/${dirKey}`;
    let names: string[];
    try {
      names = fs.readdirSync(dirPath);
    } catch (err) {
      problem(fromSystemError(err, dirPath, 'cannot read directory'));
      continue;
    }
    let undecodable: Map<string, Buffer> | undefined;
    for (const name of names) {
      if (name.startsWith(TEMP_PREFIX)) {
        options.onTemp?.(`${dirPath}/${name}`);
        continue;
      }
      if (name.includes('\uFFFD')) {
        undecodable ??= undecodableNames(dirPath);
        const raw = undecodable.get(name);
        if (raw !== undefined) {
          const shown = quoteBytes(Buffer.concat([Buffer.from(`${dirPath}/`), raw]));
          problem(
            new TongbuError('KEY_NOT_UTF8', `name is not valid UTF-8, refused: ${shown}`, {
              data: { path: dirPath },
            }),
          );
          continue;
        }
      }
      const key = dirKey === '' ? name : `${dirKey}/${name}`;
      const full = `${dirPath}/${name}`;
      let stat: fs.Stats | undefined;
      try {
        stat = fs.lstatSync(full, { throwIfNoEntry: false });
      } catch (err) {
        problem(fromSystemError(err, full, 'cannot stat'));
        continue;
      }
      if (stat === undefined) continue; // vanished since readdir
      if (stat.isDirectory()) {
        stack.push(key);
      } else if (!stat.isFile() && !stat.isSymbolicLink()) {
        problem(
          new TongbuError('BAD_ARGUMENT', `skipped special file ${full}`, { data: { path: full } }),
        );
        continue;
      }
      let target: string | undefined;
      if (stat.isSymbolicLink()) {
        try {
          target = fs.readlinkSync(full);
        } catch (err) {
          problem(fromSystemError(err, full, 'cannot read link'));
          continue;
        }
      }
      batch.push(entryOf(key, stat, target));
      if (batch.length >= BATCH) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length > 0) yield batch;
}

/** The raw names in a directory that are not UTF-8, by their lossy decoding. */
function undecodableNames(dirPath: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const raw of fs.readdirSync(dirPath, { encoding: 'buffer' })) {
    if (decodeName(raw) === undefined) out.set(raw.toString('utf8'), raw);
  }
  return out;
}
