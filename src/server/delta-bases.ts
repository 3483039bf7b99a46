/**
 * The node's half of delta uploads: it picks the base a lacked chunk is
 * described against (the old version's chunks between the neighbours the
 * client names), sends their block signatures, and rebuilds chunks from
 * deltas, which are stored only when they hash to their address.
 */
import { applyDelta, blockSignatures } from '../core/delta.js';
import { TongbuError } from '../core/errors.js';
import { storeAddress, type ContentHash } from '../core/hash.js';
import type {
  BaseRequest,
  BaseSignatures,
  ChunkFrame,
  DeltaFrame,
} from '../endpoints/tongbu/protocol.js';
import { MAX_OBJECT_BYTES } from '../store/chunk-store.js';
import { decodeManifest, type ChunkRef } from '../store/manifest.js';

/** A base is at most this long, and at most twice its run plus this slack. */
const MAX_BASE_BYTES = 8 * 1024 * 1024;
const BASE_SLACK = 256 * 1024;
/** Manifests whose chunk positions are kept between requests. */
const MANIFESTS_KEPT = 8;
/**
 * Bases read for signatures are kept for the delta that follows, up to
 * this many bytes: each is read (and verified) once.
 */
const BASES_KEPT_BYTES = 64 * 1024 * 1024;

interface IndexedManifest {
  readonly refs: readonly ChunkRef[];
  /** The first position of each chunk. */
  readonly first: ReadonlyMap<ContentHash, number>;
}

export type ReadObject = (hash: ContentHash) => Promise<Uint8Array>;

export class DeltaBases {
  private readonly read: ReadObject;
  private readonly manifests = new Map<ContentHash, IndexedManifest>();
  /** Bases by their chunk list, oldest first. */
  private readonly kept = new Map<string, Buffer>();
  private keptBytes = 0;

  constructor(read: ReadObject) {
    this.read = read;
  }

  /** The base and its signatures for each request; no base where none is found. */
  async signatures(requests: readonly BaseRequest[]): Promise<BaseSignatures[]> {
    const out: BaseSignatures[] = [];
    for (const r of requests) {
      // Without `range` the base is the named object, read once.
      let bases = r.range ? await this.rangeOf(r) : [{ hash: r.object, size: 0 }];
      let hashes = bases.map((b) => b.hash);
      let bytes: Buffer;
      try {
        bytes = await this.concat(hashes);
        if (!r.range) bases = [{ hash: r.object, size: bytes.length }];
      } catch (err) {
        // A base chunk that is gone (or too big a base): no base; the chunks go whole.
        if (!(err instanceof TongbuError) || (err.code !== 'NOT_FOUND' && err.code !== 'TOO_LARGE'))
          throw err;
        [bases, hashes, bytes] = [[], [], Buffer.alloc(0)];
      }
      if (bytes.length > 0) this.keep(hashes.join(','), bytes);
      out.push({ bases, block: r.block, signatures: blockSignatures(bytes, r.block) });
    }
    return out;
  }

  /**
   * Rebuilds each frame's chunk; `failed` are those whose bytes do not hash
   * to their address (a weak hash matched different bytes) or whose base is
   * gone: the client sends those whole.
   */
  async rebuild(
    frames: readonly DeltaFrame[],
  ): Promise<{ ok: ChunkFrame[]; failed: ContentHash[] }> {
    const ok: ChunkFrame[] = [];
    const failed: ContentHash[] = [];
    const cache = new Map<string, Buffer>();
    for (const f of frames) {
      const key = f.bases.join(',');
      let base = cache.get(key);
      if (base === undefined) {
        try {
          base = this.take(key) ?? (await this.concat(f.bases));
        } catch (err) {
          if (err instanceof TongbuError && err.code === 'NOT_FOUND') {
            failed.push(f.hash);
            continue;
          }
          throw err;
        }
        cache.set(key, base);
      }
      const bytes = applyDelta(f.delta, base, MAX_OBJECT_BYTES);
      if (storeAddress(bytes) === f.hash) ok.push({ hash: f.hash, bytes });
      else failed.push(f.hash);
    }
    return { ok, failed };
  }

  private keep(key: string, bytes: Buffer): void {
    if (this.kept.has(key)) return;
    this.kept.set(key, bytes);
    this.keptBytes += bytes.length;
    for (const [k, b] of this.kept) {
      if (this.keptBytes <= BASES_KEPT_BYTES) break;
      this.kept.delete(k);
      this.keptBytes -= b.length;
    }
  }

  private take(key: string): Buffer | undefined {
    const bytes = this.kept.get(key);
    if (bytes) {
      this.kept.delete(key);
      this.keptBytes -= bytes.length;
    }
    return bytes;
  }

  private async concat(hashes: readonly ContentHash[]): Promise<Buffer> {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (const h of hashes) {
      const bytes = await this.read(h);
      total += bytes.length;
      if (total > MAX_OBJECT_BYTES) {
        throw new TongbuError('TOO_LARGE', `a delta base is larger than ${MAX_OBJECT_BYTES} bytes`);
      }
      parts.push(bytes);
    }
    return Buffer.concat(parts, total);
  }

  /** The old chunks between the request's neighbours in the manifest it names. */
  private async rangeOf(r: BaseRequest): Promise<{ hash: ContentHash; size: number }[]> {
    const manifest = await this.manifest(r.object);
    if (!manifest) return [];
    const cap = Math.min(MAX_BASE_BYTES, 2 * r.runBytes + BASE_SLACK);
    // Without both ends known, the run's own length (and a little) is the guess.
    const guess = r.runBytes + BASE_SLACK / 4;
    const start = r.prev === undefined ? 0 : manifest.first.get(r.prev);
    const out: ChunkRef[] = [];
    let bytes = 0;
    if (start !== undefined) {
      const from = r.prev === undefined ? 0 : start + 1;
      for (let i = from; i < manifest.refs.length; i++) {
        const ref = manifest.refs[i]!;
        if (ref.hash === r.next) break;
        if (r.next === undefined && bytes >= guess) break;
        if (bytes + ref.size > cap) break;
        out.push(ref);
        bytes += ref.size;
      }
      return out;
    }
    // `prev` is not in the old version (it is new itself): back from `next`, if that is there.
    const end = r.next !== undefined && r.next !== 'end' ? manifest.first.get(r.next) : undefined;
    if (end === undefined) return [];
    for (let i = end - 1; i >= 0 && bytes < guess; i--) {
      const ref = manifest.refs[i]!;
      if (bytes + ref.size > cap) break;
      out.push(ref);
      bytes += ref.size;
    }
    return out.reverse();
  }

  private async manifest(hash: ContentHash): Promise<IndexedManifest | undefined> {
    const kept = this.manifests.get(hash);
    if (kept) {
      this.manifests.delete(hash);
      this.manifests.set(hash, kept);
      return kept;
    }
    let refs: ChunkRef[];
    try {
      refs = decodeManifest(await this.read(hash));
    } catch (err) {
      if (err instanceof TongbuError && (err.code === 'NOT_FOUND' || err.code === 'BAD_ARGUMENT'))
        return undefined;
      throw err;
    }
    const first = new Map<ContentHash, number>();
    refs.forEach((ref, i) => {
      if (!first.has(ref.hash)) first.set(ref.hash, i);
    });
    const indexed = { refs, first };
    this.manifests.set(hash, indexed);
    if (this.manifests.size > MANIFESTS_KEPT) {
      this.manifests.delete(this.manifests.keys().next().value!);
    }
    return indexed;
  }
}
