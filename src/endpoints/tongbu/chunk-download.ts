/**
 * Streams a stored file's content: the manifest gives the chunk list, chunks
 * are fetched in batches (two in flight) and each is checked against its
 * hash before a byte of it is passed on.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { TongbuError } from '../../core/errors.js';
import type { ChunkerOptions } from '../../core/fastcdc.js';
import { storeAddress, type ContentHash } from '../../core/hash.js';
import { decodeManifest, type ChunkRef } from '../../store/manifest.js';
import type { StoredEntry } from '../../store/stored-entry.js';
import type { ReadOptions } from '../endpoint.js';
import { createChunkCutter, type CutChunk } from './chunk-cutter.js';
import type { TongbuClient } from './tongbu-client.js';

const FETCH_BYTES = 8 * 1024 * 1024;

export async function chunkList(client: TongbuClient, s: StoredEntry): Promise<ChunkRef[]> {
  if (!s.data || !s.parts) return [];
  if (s.parts === 1) return [{ hash: s.data, size: s.size }];
  const bytes = await client.getObject(s.data);
  check(s.data, bytes);
  return decodeManifest(bytes);
}

export async function* readContent(
  client: TongbuClient,
  s: StoredEntry,
  chunker: ChunkerOptions,
  options: ReadOptions = {},
): AsyncIterable<Uint8Array> {
  const { signal } = options;
  const all = await chunkList(client, s);
  const basis =
    options.basis !== undefined && all.length > 1
      ? await indexBasis(options.basis, chunker)
      : undefined;
  try {
    yield* readChunks(client, all, basis, signal);
  } finally {
    basis?.close();
  }
}

async function* readChunks(
  client: TongbuClient,
  refs: readonly ChunkRef[],
  basis: BasisIndex | undefined,
  signal: AbortSignal | undefined,
): AsyncIterable<Uint8Array> {
  const groups: ChunkRef[][] = [];
  let group: ChunkRef[] = [];
  let bytes = 0;
  for (const r of refs) {
    group.push(r);
    bytes += r.size;
    if (bytes >= FETCH_BYTES) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
  }
  if (group.length > 0) groups.push(group);
  const fetchGroup = async (g: readonly ChunkRef[]): Promise<Uint8Array[]> => {
    const byHash = new Map<ContentHash, Uint8Array>();
    for (const r of g) {
      const local = basis?.take(r);
      if (local) byHash.set(r.hash, local);
    }
    const unique = [...new Set(g.map((r) => r.hash))].filter((h) => !byHash.has(h));
    const frames = unique.length > 0 ? await client.fetchChunks(unique) : [];
    for (const f of frames) {
      check(f.hash, f.bytes);
      byHash.set(f.hash, f.bytes);
    }
    return g.map((r) => {
      const b = byHash.get(r.hash);
      if (!b || b.length !== r.size) {
        throw new TongbuError(
          'HASH_MISMATCH',
          `chunk ${r.hash} missing or of the wrong size in reply`,
          { data: { hash: r.hash } },
        );
      }
      return b;
    });
  };
  let next = groups.length > 0 ? fetchGroup(groups[0]!) : undefined;
  for (let i = 0; i < groups.length; i++) {
    signal?.throwIfAborted();
    const current = next!;
    next = i + 1 < groups.length ? fetchGroup(groups[i + 1]!) : undefined;
    next?.catch(() => undefined);
    for (const b of await current) yield b;
  }
}

function check(hash: ContentHash, bytes: Uint8Array): void {
  const actual = storeAddress(bytes);
  if (actual !== hash) {
    throw new TongbuError('HASH_MISMATCH', `chunk ${hash} arrived as ${actual}`, {
      data: { hash },
    });
  }
}

/** Where the chunks of a local older version are, by hash. */
interface BasisIndex {
  /** The chunk's bytes from the basis file, verified, or undefined. */
  take(ref: ChunkRef): Uint8Array | undefined;
  close(): void;
}

const BASIS_BLOCK = 4 * 1024 * 1024;

/**
 * Cuts a local file with the store's chunker and notes where each chunk is,
 * keeping no bytes; chunks found there are read back (and re-verified) when
 * the download needs them. A basis that cannot be read is no basis.
 */
async function indexBasis(path: string, chunker: ChunkerOptions): Promise<BasisIndex | undefined> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  const where = new Map<ContentHash, { offset: number; length: number }>();
  const cutter = createChunkCutter(chunker);
  const note = (chunks: readonly CutChunk[]): void => {
    for (const c of chunks)
      where.set(storeAddress(c.bytes), { offset: c.offset, length: c.bytes.length });
  };
  try {
    const block = Buffer.allocUnsafe(BASIS_BLOCK);
    for (let pos = 0; ;) {
      const n = readSync(fd, block, 0, BASIS_BLOCK, pos);
      if (n === 0) break;
      note(cutter.push(block.subarray(0, n)));
      pos += n;
      // Let other transfers run between blocks.
      await Promise.resolve();
    }
    note(cutter.finish());
  } catch {
    closeSync(fd);
    return undefined;
  }
  return {
    take(ref) {
      const at = where.get(ref.hash);
      if (!at || at.length !== ref.size) return undefined;
      const bytes = Buffer.allocUnsafe(at.length);
      if (readSync(fd, bytes, 0, at.length, at.offset) !== at.length) return undefined;
      return storeAddress(bytes) === ref.hash ? bytes : undefined;
    },
    close: () => closeSync(fd),
  };
}
