/**
 * Moves file content from source to destination. When both sides are local
 * trees the destination copies in bulk itself (worker threads, one sync per
 * batch); otherwise content streams through `read`/`write` with bounded
 * parallelism. Either way every file is verified by hash before it becomes
 * visible, a source that changes while it is read is retried, and retryable
 * errors are retried with backoff.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TongbuError, toTongbuError } from '../core/errors.js';
import type { Endpoint, Entry, ReadOptions, WriteResult } from '../endpoints/endpoint.js';
import type { HashAlgorithm } from '../core/hash.js';
import type { CopyAction } from './planner.js';

export interface TransferResult {
  readonly source: Entry;
  readonly result: WriteResult;
  /** Compared equal: nothing written, metadata still to apply. */
  readonly unchanged: boolean;
}

export interface TransferOptions {
  readonly transfers: number;
  /** What files are hashed with as they are compared and written. */
  readonly algorithm: HashAlgorithm;
  readonly bwlimit: number | undefined;
  readonly signal: AbortSignal | undefined;
  readonly onBytes: (bytes: number) => void;
  readonly onDone: (done: TransferResult) => void;
  readonly onError: (entry: Entry, error: TongbuError) => void;
}

const ROUNDS = 4;

export async function transferFiles(
  source: Endpoint,
  destination: Endpoint,
  copies: readonly CopyAction[],
  options: TransferOptions,
): Promise<void> {
  let todo = copies;
  for (let round = 1; todo.length > 0; round++) {
    const retry: CopyAction[] = [];
    const failed = (action: CopyAction, error: TongbuError): void => {
      if (error.retryable && round < ROUNDS && !options.signal?.aborted) retry.push(action);
      else options.onError(action.source, error);
    };
    if (destination.copyFromLocal && source.localPath !== undefined) {
      await copyLocal(source.localPath, destination, todo, options, failed);
    } else {
      await copyStreams(source, destination, todo, options, failed);
    }
    if (retry.length === 0) break;
    await sleep(100 * 2 ** round);
    todo = await refreshed(source, retry, options);
  }
}

async function copyLocal(
  sourceRoot: string,
  destination: Endpoint,
  todo: readonly CopyAction[],
  options: TransferOptions,
  failed: (action: CopyAction, error: TongbuError) => void,
): Promise<void> {
  await destination.copyFromLocal!(sourceRoot, todo, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.bwlimit ? { bwlimit: options.bwlimit } : {}),
    algorithm: options.algorithm,
    onBytes: options.onBytes,
    onOutcome: (outcome) => {
      const entry = outcome.item.source;
      if (outcome.ok) {
        options.onDone({ source: entry, result: outcome.result, unchanged: outcome.unchanged });
      } else {
        failed(
          { source: entry, compare: outcome.item.compare ?? false },
          toTongbuError(outcome.error),
        );
      }
    },
  });
}

async function copyStreams(
  source: Endpoint,
  destination: Endpoint,
  todo: readonly CopyAction[],
  options: TransferOptions,
  failed: (action: CopyAction, error: TongbuError) => void,
): Promise<void> {
  const throttle = createThrottle(options.bwlimit);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < todo.length && !options.signal?.aborted) {
      const action = todo[next++]!;
      try {
        options.onDone(await copyOne(source, destination, action, options, throttle));
      } catch (err) {
        failed(action, toTongbuError(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.transfers, todo.length) }, worker));
}

async function copyOne(
  source: Endpoint,
  destination: Endpoint,
  action: CopyAction,
  options: TransferOptions,
  throttle: (bytes: number) => Promise<void>,
): Promise<TransferResult> {
  const { source: entry } = action;
  if (action.compare && !destination.capabilities.dedupWrites) {
    const hashOptions = { algorithm: options.algorithm };
    const [[a], [b]] = await Promise.all([
      source.hash([entry.key], hashOptions),
      destination.hash([entry.key], hashOptions),
    ]);
    if (a !== undefined && a === b) {
      return { source: entry, unchanged: true, result: { hash: a, entry } };
    }
  }
  const signal = options.signal ? { signal: options.signal } : {};
  const result = await destination.write(
    {
      key: entry.key,
      size: entry.size,
      mtimeMs: entry.mtimeMs,
      mode: entry.mode,
      algorithm: options.algorithm,
      ...(source.localPath !== undefined && !options.bwlimit
        ? { sourcePath: join(source.localPath, entry.key) }
        : {}),
    },
    checkedRead(source, entry, options.onBytes, throttle, {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(destination.localPath !== undefined
        ? { basis: join(destination.localPath, entry.key) }
        : {}),
    }),
    signal,
  );
  return { source: entry, result, unchanged: false };
}

/**
 * The source's bytes, with a last check that the file did not change while
 * it was read: the error is thrown inside the stream, so the destination
 * never makes the half-old content visible.
 */
async function* checkedRead(
  source: Endpoint,
  entry: Entry,
  onBytes: (bytes: number) => void,
  throttle: (bytes: number) => Promise<void>,
  readOptions: ReadOptions,
): AsyncIterable<Uint8Array> {
  for await (const chunk of source.read(entry.key, readOptions)) {
    await throttle(chunk.length);
    onBytes(chunk.length);
    yield chunk;
  }
  const now = await source.stat(entry.key);
  if (now?.kind !== 'file' || now.size !== entry.size || now.mtimeMs !== entry.mtimeMs) {
    throw new TongbuError('FILE_CHANGED', `${source.url}: ${entry.key} changed while it was read`, {
      data: { key: entry.key },
    });
  }
}

/** Re-reads the source entries of retried copies (a changed file has a new size and mtime). */
async function refreshed(
  source: Endpoint,
  retry: readonly CopyAction[],
  options: TransferOptions,
): Promise<CopyAction[]> {
  const out: CopyAction[] = [];
  for (const action of retry) {
    const entry = await source.stat(action.source.key).catch(() => undefined);
    if (entry?.kind === 'file') out.push({ source: entry, compare: action.compare });
    else {
      options.onError(
        action.source,
        new TongbuError('NOT_FOUND', `${source.url}: ${action.source.key} vanished during the run`),
      );
    }
  }
  return out;
}

/** A shared token bucket: resolves when `bytes` may pass. */
export function createThrottle(
  bytesPerSecond: number | undefined,
): (bytes: number) => Promise<void> {
  if (!bytesPerSecond) return () => Promise.resolve();
  let start = performance.now();
  let sent = 0;
  return async (bytes) => {
    sent += bytes;
    const due = start + (sent / bytesPerSecond) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    if (performance.now() - start > 10_000) {
      start = performance.now();
      sent = 0;
    }
  };
}
