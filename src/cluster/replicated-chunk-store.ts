/**
 * The chunk store of a cluster node: the node's own store, plus the rest of
 * the cluster behind it. It is what the node's `Store` and routes use, so
 * the versioned store works unchanged on top of replication:
 *
 * - `storeBatch` (client uploads) places each chunk on its R replicas by
 *   rendezvous hashing and waits for as many acknowledgments as the write's
 *   mode needs: `sync` all R, `quorum` a majority, `async` one (this node's
 *   copy; the others get hints in the durable queue). A replica that fails or
 *   is down gets a hint, with the chunk kept here until it is delivered.
 * - Objects a commit writes (tree nodes, the commit) are replicated the same
 *   way by `sync()`, which the Store calls before it moves the ref; the
 *   write's mode and the replicas reached travel in an AsyncLocalStorage
 *   context opened by `withWrite`.
 * - `get` reads this node's copy, verified; when it is missing or damaged it
 *   falls over to the other replicas, and puts the good copy back here
 *   (read repair).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { TongbuError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import type { ChunkFrame } from '../endpoints/tongbu/protocol.js';
import type { ChunkStore, ChunkStoreStats, StoredObject } from '../store/chunk-store.js';
import type { ClusterView } from './cluster-view.js';
import type { HintQueue } from './hint-queue.js';
import { requiredAcks, type ReplicationMode } from './placement.js';

export interface WriteContext {
  readonly mode: ReplicationMode;
  /** Objects written in this context and not replicated yet. */
  readonly written: Map<ContentHash, Uint8Array>;
  /** The fewest replicas any object of this write reached. */
  replicas: number;
}

export interface ReplicationReport {
  readonly mode: ReplicationMode;
  /** The fewest replicas that acknowledged any chunk of the write. */
  readonly replicas: number;
  /** R: the replicas each chunk should have. */
  readonly wanted: number;
}

export interface ReplicaEvents {
  /** A damaged or missing copy here was replaced from another replica. */
  readRepaired?(hash: ContentHash): void;
  /** Hints were queued for `node`. */
  hinted?(node: string, count: number): void;
}

export class ReplicatedChunkStore implements ChunkStore {
  readonly local: ChunkStore;
  readonly dir: string;
  private readonly view: ClusterView;
  private readonly hints: HintQueue;
  private readonly context = new AsyncLocalStorage<WriteContext>();
  /** Objects written outside a write context: replicated through hints at the next sync. */
  private readonly untracked = new Set<ContentHash>();
  private readonly events: ReplicaEvents;

  constructor(local: ChunkStore, view: ClusterView, hints: HintQueue, events: ReplicaEvents = {}) {
    this.local = local;
    this.dir = local.dir;
    this.view = view;
    this.hints = hints;
    this.events = events;
  }

  /** Runs `fn` as one write in `mode`; reports how many replicas its objects reached. */
  async withWrite<T>(
    mode: ReplicationMode,
    fn: () => Promise<T>,
  ): Promise<{ result: T; replication: ReplicationReport }> {
    const ctx: WriteContext = { mode, written: new Map(), replicas: Infinity };
    const result = await this.context.run(ctx, fn);
    if (ctx.written.size > 0) await this.context.run(ctx, () => this.sync());
    const wanted = this.view.replicaCount();
    const replicas = ctx.replicas === Infinity ? wanted : ctx.replicas;
    return { result, replication: { mode, replicas, wanted } };
  }

  // ---- reads ----

  async get(hash: ContentHash): Promise<Uint8Array> {
    let damaged = false;
    try {
      return this.local.getSync(hash);
    } catch (err) {
      if (!(err instanceof TongbuError)) throw err;
      if (err.code === 'HASH_MISMATCH') damaged = true;
      else if (err.code !== 'NOT_FOUND') throw err;
    }
    const bytes = await this.fetchFromPeers(hash);
    if (!bytes) {
      throw new TongbuError(
        damaged ? 'HASH_MISMATCH' : 'NOT_FOUND',
        damaged
          ? `chunk ${hash} is damaged here and no other replica has a good copy`
          : `no chunk ${hash} on any replica`,
        { data: { hash } },
      );
    }
    const placedHere = this.view.replicasOf(hash).includes(this.view.selfId);
    if (damaged || placedHere) {
      if (damaged) this.local.remove(hash);
      this.local.storeChecked(bytes, hash);
      this.events.readRepaired?.(hash);
    }
    return bytes;
  }

  /** A verified copy of `hash` from the first peer that has one: replicas first, then any live node. */
  async fetchFromPeers(hash: ContentHash): Promise<Uint8Array | undefined> {
    const placed = this.view.replicasOf(hash);
    const others = this.view
      .members()
      .map((m) => m.member.id)
      .filter((id) => !placed.includes(id));
    for (const id of [...placed, ...others]) {
      if (id === this.view.selfId || !this.view.isLive(id)) continue;
      try {
        const [frame] = await this.view.peer(id)!.fetch([hash]);
        if (frame && this.local.checkBytes(frame.bytes, hash) === hash) return frame.bytes;
      } catch {
        // that replica is down or sent bad bytes: try the next
      }
    }
    return undefined;
  }

  getSync(hash: ContentHash): Buffer {
    return this.local.getSync(hash);
  }

  async has(hash: ContentHash): Promise<boolean> {
    return (await this.missingAnywhere([hash])).length === 0;
  }

  /** The hashes no live node holds (a commit may name only chunks that exist somewhere). */
  async missingAnywhere(hashes: readonly ContentHash[]): Promise<ContentHash[]> {
    const here = await Promise.all(hashes.map((h) => this.local.has(h)));
    let absent = hashes.filter((_, i) => !here[i]);
    const byNode = this.groupByReplica(absent);
    for (const [id, asked] of byNode) {
      if (absent.length === 0) break;
      if (!this.view.isLive(id)) continue;
      try {
        const lacking = new Set(await this.view.peer(id)!.missing(asked));
        const found = new Set(asked.filter((h) => !lacking.has(h)));
        absent = absent.filter((h) => !found.has(h));
      } catch {
        // unreachable: its chunks count as absent unless another replica has them
      }
    }
    return absent;
  }

  /**
   * What a client should upload: the hashes that some live replica lacks.
   * A replica that is down gets them later from hints or anti-entropy.
   */
  async missingForUpload(hashes: readonly ContentHash[]): Promise<ContentHash[]> {
    const lacking = new Set<ContentHash>();
    const byNode = this.groupByReplica(hashes);
    await Promise.all(
      [...byNode].map(async ([id, asked]) => {
        if (id === this.view.selfId) {
          for (const h of this.local.missing(asked)) lacking.add(h);
          return;
        }
        if (!this.view.isLive(id)) return;
        try {
          for (const h of await this.view.peer(id)!.missing(asked)) lacking.add(h);
        } catch {
          for (const h of asked) lacking.add(h);
        }
      }),
    );
    return hashes.filter((h) => lacking.has(h));
  }

  private groupByReplica(hashes: readonly ContentHash[]): Map<string, ContentHash[]> {
    const byNode = new Map<string, ContentHash[]>();
    for (const h of hashes) {
      for (const id of this.view.replicasOf(h)) {
        const list = byNode.get(id);
        if (list) list.push(h);
        else byNode.set(id, [h]);
      }
    }
    return byNode;
  }

  // ---- writes ----

  /** Client uploads: checked whole first, then placed and replicated in `mode`. */
  async storeBatch(
    frames: readonly ChunkFrame[],
    mode: ReplicationMode,
  ): Promise<ReplicationReport> {
    for (const f of frames) this.local.checkBytes(f.bytes, f.hash);
    const replicas = await this.replicate(frames, mode);
    return { mode, replicas, wanted: this.view.replicaCount() };
  }

  /**
   * Sends each frame to its replicas and resolves with the fewest
   * acknowledgments any frame got, once every frame has what `mode` needs;
   * UNAVAILABLE when some cannot. Replicas that fail get hints, the chunk
   * kept here. `localDurable`: the frames are in the local store already and
   * this sync makes them durable.
   */
  private async replicate(
    batch: readonly ChunkFrame[],
    mode: ReplicationMode,
    localDurable?: Promise<void>,
  ): Promise<number> {
    // A chunk sent twice in one batch is placed and counted once.
    const frames = [...new Map(batch.map((f) => [f.hash, f])).values()];
    const storedHere = localDurable !== undefined;
    if (frames.length === 0) return this.view.replicaCount();
    const self = this.view.selfId;
    const need = requiredAcks(mode, this.view.replicaCount());
    const perNode = new Map<string, ChunkFrame[]>();
    const acks = new Map<ContentHash, number>();
    for (const f of frames) {
      acks.set(f.hash, 0);
      for (const id of this.view.replicasOf(f.hash)) {
        const list = perNode.get(id);
        if (list) list.push(f);
        else perNode.set(id, [f]);
      }
    }
    let keptHere = storedHere;
    const keepHere = async (): Promise<void> => {
      if (keptHere) return;
      keptHere = true;
      for (const f of frames) this.local.storeChecked(f.bytes, f.hash);
      await this.local.sync();
    };

    if (mode === 'async') {
      await keepHere();
      for (const [id, list] of perNode) {
        if (id === self) continue;
        this.hint(
          id,
          list.map((f) => f.hash),
        );
      }
      return 1;
    }

    let short = frames.length;
    let settle: () => void = () => undefined;
    const enough = new Promise<void>((resolve) => (settle = resolve));
    const acked = (list: readonly ChunkFrame[]): void => {
      for (const f of list) {
        const n = acks.get(f.hash)! + 1;
        acks.set(f.hash, n);
        if (n === need) short--;
      }
      if (short === 0) settle();
    };
    const tasks = [...perNode].map(async ([id, list]) => {
      try {
        if (id === self) {
          if (!storedHere) for (const f of list) this.local.storeChecked(f.bytes, f.hash);
          await (localDurable ?? this.local.sync());
        } else {
          if (!this.view.isLive(id)) throw new TongbuError('UNAVAILABLE', `node ${id} is down`);
          await this.view.peer(id)!.store(list);
        }
        acked(list);
      } catch {
        // Kept here and hinted, so the replica gets it when it is back.
        await keepHere();
        this.hint(
          id,
          list.map((f) => f.hash),
        );
      }
    });
    // Stragglers finish (or hint) in the background once the mode is satisfied.
    const all = Promise.all(tasks).catch(() => undefined);
    await Promise.race([enough, all]);
    const fewest = Math.min(...acks.values());
    if (fewest < need) {
      throw new TongbuError(
        'UNAVAILABLE',
        `a ${mode} write reached ${fewest} of ${this.view.replicaCount()} replicas (needs ${need}); the rest is queued`,
        { data: { mode, replicas: fewest, needed: need }, retryable: true },
      );
    }
    return fewest;
  }

  private hint(node: string, hashes: readonly ContentHash[]): void {
    this.hints.add(node, hashes);
    this.events.hinted?.(node, hashes.length);
  }

  putSync(bytes: Uint8Array, expected?: ContentHash): ContentHash {
    const hash = this.local.putSync(bytes, expected);
    this.track(hash, bytes);
    return hash;
  }

  put(bytes: Uint8Array, expected?: ContentHash): Promise<ContentHash> {
    return this.local.put(bytes, expected).then((hash) => {
      this.track(hash, bytes);
      return hash;
    });
  }

  checkBytes(bytes: Uint8Array, expected?: ContentHash): ContentHash {
    return this.local.checkBytes(bytes, expected);
  }

  storeChecked(bytes: Uint8Array, hash: ContentHash): void {
    this.local.storeChecked(bytes, hash);
    this.track(hash, bytes);
  }

  private track(hash: ContentHash, bytes: Uint8Array): void {
    const ctx = this.context.getStore();
    if (ctx) ctx.written.set(hash, bytes);
    else this.untracked.add(hash);
  }

  missing(hashes: readonly ContentHash[]): ContentHash[] {
    return this.local.missing(hashes);
  }

  /**
   * Makes local writes durable and replicates the objects of the current
   * write, both at once: this node's sync counts as its acknowledgment.
   */
  async sync(): Promise<void> {
    const localDurable = this.local.sync();
    const ctx = this.context.getStore();
    if (ctx && ctx.written.size > 0) {
      const frames = [...ctx.written].map(([hash, bytes]) => ({ hash, bytes }));
      ctx.written.clear();
      const [, reached] = await Promise.all([
        localDurable,
        this.replicate(frames, ctx.mode, localDurable),
      ]);
      ctx.replicas = Math.min(ctx.replicas, reached);
    } else {
      await localDurable;
    }
    if (this.untracked.size > 0) {
      const hashes = [...this.untracked];
      this.untracked.clear();
      for (const [id, list] of this.groupByReplica(hashes))
        if (id !== this.view.selfId) this.hint(id, list);
    }
  }

  entries(): Iterable<StoredObject> {
    return this.local.entries();
  }

  remove(hash: ContentHash, untouchedSince?: number): void {
    this.local.remove(hash, untouchedSince);
  }

  stats(): ChunkStoreStats {
    return this.local.stats();
  }

  recover(): { checked: number; removed: ContentHash[] } {
    return this.local.recover();
  }

  close(): void {
    this.local.close();
  }
}
