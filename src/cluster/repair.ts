/**
 * The repairs a cluster node runs in the background, throttled, resumable
 * (their cursors live in the hint queue's database) and reporting progress:
 *
 * - `AntiEntropy` compares this node's chunks with each peer's by hash range
 *   (256 ranges: count and XOR of the digests placed on both nodes), lists
 *   only the ranges that differ, and pushes what the peer lacks; copies kept
 *   here for other nodes (handoff) go to their replicas and are then dropped.
 * - `Scrubber` re-hashes every stored object at a limited rate and replaces
 *   damaged copies with verified ones from other replicas.
 */
import { TongbuError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import type { ChunkFrame } from '../endpoints/tongbu/protocol.js';
import type { ChunkStore } from '../store/chunk-store.js';
import type { ClusterView } from './cluster-view.js';
import type { HintQueue } from './hint-queue.js';
import type { RangeDigest, RangeQuery } from './peer-client.js';
import { placeReplicas, placementNode } from './placement.js';
import type { ReplicatedChunkStore } from './replicated-chunk-store.js';

export interface RepairReport {
  readonly kind: 'anti-entropy' | 'scrub';
  state: 'idle' | 'running' | 'done' | 'failed';
  startedMs: number;
  finishedMs?: number;
  /** Objects looked at so far and in all. */
  checked: number;
  total: number;
  /** Copies found missing (anti-entropy) or damaged (scrub). */
  found: number;
  /** Copies pushed or replaced. */
  repaired: number;
  repairedBytes: number;
  /** Found and not repaired yet: an honest remaining count. */
  remaining: number;
  /** Ranges compared and found different (anti-entropy). */
  rangesCompared?: number;
  rangesDiffering?: number;
  error?: string;
}

/** What a repair needs of its node. */
export interface RepairContext {
  readonly selfId: string;
  readonly replicas: number;
  readonly local: ChunkStore;
  readonly chunks: ReplicatedChunkStore;
  readonly view: ClusterView;
  readonly hints: HintQueue;
  /** Bytes per second pushed (anti-entropy) or re-hashed (scrub). */
  readonly bytesPerSec: number;
  /** False once the node stops: a pass ends early and says so. */
  running(): boolean;
}

const RANGES = 256;
const MISSING_BATCH = 50_000;
const PUSH_BATCH_BYTES = 16 * 1024 * 1024;

/** A repair job that runs one pass at a time: `run` joins the pass under way. */
abstract class RepairPass {
  protected readonly ctx: RepairContext;
  private current: Promise<RepairReport> | undefined;
  last: RepairReport | undefined;

  constructor(ctx: RepairContext) {
    this.ctx = ctx;
  }

  /** Resolves when no pass is running. */
  async idle(): Promise<void> {
    await this.current?.catch(() => undefined);
  }

  /** One pass (or the one running). */
  run(): Promise<RepairReport> {
    this.current ??= this.pass().finally(() => (this.current = undefined));
    return this.current;
  }

  protected abstract pass(): Promise<RepairReport>;
}

export class AntiEntropy extends RepairPass {
  /** The range digests of the local chunks placed on both this node and `query.requester`. */
  rangeDigests(query: RangeQuery): RangeDigest[] {
    const digests = emptyRanges();
    this.forShared(query, (hash) => addToRange(digests, hash));
    return digests.map(finishRange);
  }

  /** The local chunks of one range placed on both this node and `query.requester`. */
  rangeHashes(query: RangeQuery, range: number): ContentHash[] {
    const out: ContentHash[] = [];
    this.forShared(query, (hash) => {
      if (rangeOf(hash) === range) out.push(hash);
    });
    return out;
  }

  private forShared(query: RangeQuery, visit: (hash: ContentHash) => void): void {
    const nodes = query.members.map(placementNode);
    const self = this.ctx.selfId;
    for (const o of this.ctx.local.entries()) {
      const ids = placeReplicas(o.hash, nodes, query.replicas).map((n) => n.id);
      if (ids.includes(self) && ids.includes(query.requester)) visit(o.hash);
    }
  }

  protected async pass(): Promise<RepairReport> {
    await this.ctx.view.refresh();
    const self = this.ctx.selfId;
    const members = this.ctx.view.placementIds();
    const replicas = this.ctx.replicas;
    const report: RepairReport = {
      kind: 'anti-entropy',
      state: 'running',
      startedMs: Date.now(),
      checked: 0,
      total: this.ctx.local.stats().objects,
      found: 0,
      repaired: 0,
      repairedBytes: 0,
      remaining: 0,
      rangesCompared: 0,
      rangesDiffering: 0,
    };
    this.last = report;
    try {
      // One scan: digests per peer, and the handoff copies.
      const nodes = members.map(placementNode);
      const perPeer = new Map<string, ReturnType<typeof emptyRanges>>();
      const handoff: ContentHash[] = [];
      for (const o of this.ctx.local.entries()) {
        report.checked++;
        const ids = placeReplicas(o.hash, nodes, replicas).map((n) => n.id);
        if (!ids.includes(self)) {
          handoff.push(o.hash);
          continue;
        }
        for (const id of ids) {
          if (id === self) continue;
          let ranges = perPeer.get(id);
          if (!ranges) perPeer.set(id, (ranges = emptyRanges()));
          addToRange(ranges, o.hash);
        }
      }
      // Resume: peers already done in an interrupted pass over the same members are skipped.
      const cursor = this.readCursor(members);
      for (const peerId of [...perPeer.keys()].sort()) {
        if (!this.ctx.running()) break;
        if (cursor.done.includes(peerId) || !this.ctx.view.isLive(peerId)) continue;
        const peer = this.ctx.view.peer(peerId)!;
        const query: RangeQuery = { requester: self, members, replicas };
        const theirs = await peer.ranges(query);
        const ours = perPeer.get(peerId)!.map(finishRange);
        const differing: number[] = [];
        for (let r = 0; r < RANGES; r++) {
          report.rangesCompared!++;
          if (ours[r]!.count !== theirs[r]?.count || ours[r]!.xor !== theirs[r]?.xor)
            differing.push(r);
        }
        report.rangesDiffering! += differing.length;
        if (differing.length > 0) {
          const wanted = new Set(differing);
          const candidates: ContentHash[] = [];
          for (const o of this.ctx.local.entries()) {
            if (!wanted.has(rangeOf(o.hash))) continue;
            const ids = placeReplicas(o.hash, nodes, replicas).map((n) => n.id);
            if (ids.includes(self) && ids.includes(peerId)) candidates.push(o.hash);
          }
          await this.pushMissing(peerId, candidates, report);
        }
        cursor.done.push(peerId);
        this.writeCursor(members, cursor.done);
      }
      // Copies kept here for others (handoff): pushed to their replicas, then dropped here.
      await this.settleHandoff(handoff, nodes, report);
      this.writeCursor(members, undefined);
      report.state = this.ctx.running() ? 'done' : 'failed';
      if (report.state === 'failed') report.error = 'stopped';
    } catch (err) {
      report.state = 'failed';
      report.error = (err as Error).message;
    }
    report.finishedMs = Date.now();
    return report;
  }

  private async pushMissing(
    peerId: string,
    candidates: readonly ContentHash[],
    report: RepairReport,
  ): Promise<void> {
    const peer = this.ctx.view.peer(peerId)!;
    for (let i = 0; i < candidates.length; i += MISSING_BATCH) {
      const lacking = await peer.missing(candidates.slice(i, i + MISSING_BATCH));
      report.found += lacking.length;
      report.remaining += lacking.length;
      await this.push(peerId, lacking, report);
    }
  }

  private async push(
    peerId: string,
    hashes: readonly ContentHash[],
    report: RepairReport,
  ): Promise<void> {
    const peer = this.ctx.view.peer(peerId)!;
    const limit = this.ctx.bytesPerSec ?? 200 * 1024 * 1024;
    let batch: ChunkFrame[] = [];
    let bytes = 0;
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const started = Date.now();
      await peer.store(batch);
      report.repaired += batch.length;
      report.repairedBytes += bytes;
      report.remaining -= batch.length;
      const minMs = (bytes / limit) * 1000;
      const spent = Date.now() - started;
      if (spent < minMs) await sleep(minMs - spent);
      batch = [];
      bytes = 0;
    };
    for (const hash of hashes) {
      if (!this.ctx.running()) return;
      const [frame] = localFrames(this.ctx.local, [hash]);
      if (!frame) {
        report.remaining--;
        continue;
      }
      batch.push(frame);
      bytes += frame.bytes.length;
      if (bytes >= PUSH_BATCH_BYTES) await flush();
    }
    await flush();
  }

  private async settleHandoff(
    handoff: readonly ContentHash[],
    nodes: ReturnType<typeof placementNode>[],
    report: RepairReport,
  ): Promise<void> {
    if (handoff.length === 0) return;
    const byNode = new Map<string, ContentHash[]>();
    for (const h of handoff) {
      for (const n of placeReplicas(h, nodes, this.ctx.replicas)) {
        const list = byNode.get(n.id);
        if (list) list.push(h);
        else byNode.set(n.id, [h]);
      }
    }
    const unconfirmed = new Set<ContentHash>();
    for (const [id, hashes] of byNode) {
      if (!this.ctx.view.isLive(id)) {
        for (const h of hashes) unconfirmed.add(h);
        continue;
      }
      try {
        await this.pushMissing(id, hashes, report);
      } catch {
        for (const h of hashes) unconfirmed.add(h);
      }
    }
    // Every replica has it now: this node's extra copy is no longer needed.
    for (const h of handoff)
      if (!unconfirmed.has(h) && !this.ctx.hints.queued(h)) this.ctx.local.remove(h);
  }

  private readCursor(members: readonly string[]): { done: string[] } {
    const raw = this.ctx.hints.getState('repair-cursor');
    if (!raw) return { done: [] };
    const saved = JSON.parse(raw) as { members: string[]; done: string[] };
    return saved.members.join(',') === members.join(',') ? { done: saved.done } : { done: [] };
  }

  private writeCursor(members: readonly string[], done: string[] | undefined): void {
    this.ctx.hints.setState(
      'repair-cursor',
      done === undefined ? undefined : JSON.stringify({ members, done }),
    );
  }
}

export class Scrubber extends RepairPass {
  protected async pass(): Promise<RepairReport> {
    const local = this.ctx.local;
    const report: RepairReport = {
      kind: 'scrub',
      state: 'running',
      startedMs: Date.now(),
      checked: 0,
      total: local.stats().objects,
      found: 0,
      repaired: 0,
      repairedBytes: 0,
      remaining: 0,
    };
    this.last = report;
    const limit = this.ctx.bytesPerSec ?? 100 * 1024 * 1024;
    const resumeAfter = this.ctx.hints.getState('scrub-cursor');
    let windowStart = Date.now();
    let windowBytes = 0;
    try {
      for (const o of local.entries()) {
        if (!this.ctx.running()) break;
        if (resumeAfter !== undefined && o.hash <= resumeAfter) continue;
        report.checked++;
        try {
          local.getSync(o.hash);
        } catch (err) {
          if (!(err instanceof TongbuError) || err.code !== 'HASH_MISMATCH') throw err;
          report.found++;
          report.remaining++;
          const good = await this.ctx.chunks.fetchFromPeers(o.hash);
          if (good) {
            local.remove(o.hash);
            local.storeChecked(good, o.hash);
            report.repaired++;
            report.repairedBytes += good.length;
            report.remaining--;
          }
        }
        windowBytes += o.size;
        if (report.checked % 1_000 === 0) this.ctx.hints.setState('scrub-cursor', o.hash);
        const minMs = (windowBytes / limit) * 1000;
        const spent = Date.now() - windowStart;
        if (minMs - spent > 20) {
          await sleep(minMs - spent);
          windowStart = Date.now();
          windowBytes = 0;
        }
      }
      await local.sync();
      this.ctx.hints.setState('scrub-cursor', undefined);
      report.state = this.ctx.running() ? 'done' : 'failed';
    } catch (err) {
      report.state = 'failed';
      report.error = (err as Error).message;
    }
    report.finishedMs = Date.now();
    return report;
  }
}

/** The intact local copies of `hashes` (a copy gone or damaged is left for later). */
export function localFrames(local: ChunkStore, hashes: readonly ContentHash[]): ChunkFrame[] {
  const frames: ChunkFrame[] = [];
  for (const hash of hashes) {
    try {
      frames.push({ hash, bytes: local.getSync(hash) });
    } catch {
      // not here any more
    }
  }
  return frames;
}

function rangeOf(hash: ContentHash): number {
  return parseInt(hash.slice(7, 9), 16);
}

function emptyRanges(): { count: number; xor: Buffer }[] {
  return Array.from({ length: RANGES }, () => ({ count: 0, xor: Buffer.alloc(32) }));
}

function addToRange(ranges: { count: number; xor: Buffer }[], hash: ContentHash): void {
  const r = ranges[rangeOf(hash)]!;
  r.count++;
  const digest = Buffer.from(hash.slice(7), 'hex');
  for (let i = 0; i < 32; i++) r.xor[i]! ^= digest[i]!;
}

function finishRange(r: { count: number; xor: Buffer }): RangeDigest {
  return { count: r.count, xor: r.xor.toString('hex') };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
