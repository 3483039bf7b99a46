/**
 * A node's part in a replicated store, as a service with start and stop:
 *
 * - membership: joins the catalog with a heartbeat lease, refreshes its view
 *   of the members every second;
 * - the hint drainer: pushes queued chunks to replicas that are back;
 * - the failure detector (one leader at a time, by election): marks members
 *   down past the grace period dead, which takes them out of placement, and
 *   un-marks them when they return;
 * - anti-entropy: compares this node's chunks with each peer's by hash range
 *   (256 ranges, count and XOR of the digests placed on both) and pushes what
 *   the peer lacks; throttled, resumable, with progress;
 * - the scrubber: re-hashes every stored chunk at a throttled rate and
 *   replaces damaged copies from healthy replicas.
 */
import { randomBytes } from 'node:crypto';
import { TongbuError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import type { ChunkFrame } from '../endpoints/tongbu/protocol.js';
import type { ClusterCatalog, MemberRecord } from '../store/catalog.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { ClusterView, DEAD_SETTING, NODE_TOKEN_SETTING } from './cluster-view.js';
import { HintQueue } from './hint-queue.js';
import type { RangeDigest, RangeQuery } from './peer-client.js';
import { placeReplicas, placementNode, type ReplicationMode } from './placement.js';
import { ReplicatedChunkStore } from './replicated-chunk-store.js';

export interface ClusterNodeOptions {
  readonly catalog: ClusterCatalog;
  readonly local: ChunkStore;
  readonly dataDir: string;
  readonly id: string;
  /** How peers and clients reach this node. */
  readonly url: string;
  readonly replicas: number;
  readonly defaultMode: ReplicationMode;
  /** Heartbeat lease; a node is seen down this long after it stops. */
  readonly heartbeatTtlMs?: number;
  /** Down this long, a node is dead: its chunks are re-replicated elsewhere. */
  readonly downGraceMs?: number;
  readonly peerTimeoutMs?: number;
  /** Anti-entropy runs this often (0: only when asked). */
  readonly repairIntervalMs?: number;
  /** The scrubber starts a pass this often (0: only when asked). */
  readonly scrubIntervalMs?: number;
  /** Throttles: bytes per second pushed by repair, and re-hashed by the scrubber. */
  readonly repairBytesPerSec?: number;
  readonly scrubBytesPerSec?: number;
  /** Issues a node token for peers when the cluster has none. */
  readonly createNodeToken: () => Promise<string>;
  /** Capacity and use of the data directory's filesystem. */
  readonly capacity?: () => { capacityBytes: number; usedBytes: number };
}

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

export interface NodeStatus {
  readonly id: string;
  readonly url: string;
  readonly objects: number;
  readonly bytes: number;
  readonly capacityBytes?: number;
  readonly usedBytes?: number;
  /** Hints queued here, per target node: the replication lag. */
  readonly hints: Record<string, number>;
  readonly lag: number;
  /** Chunks held here with a replica on a node that is down (counted once, by the first live holder). */
  readonly underReplicated: number;
  readonly leader: boolean;
  readonly repair?: RepairReport;
  readonly scrub?: RepairReport;
  readonly readRepairs: number;
}

const RANGES = 256;
const FAILURE_DETECTOR = 'failure-detector';
const HINT_BATCH = 512;
const MISSING_BATCH = 50_000;
const PUSH_BATCH_BYTES = 16 * 1024 * 1024;

export class ClusterNode {
  readonly options: ClusterNodeOptions;
  readonly view: ClusterView;
  readonly hints: HintQueue;
  readonly chunks: ReplicatedChunkStore;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly modes = new Map<string, { mode: string | undefined; untilMs: number }>();
  private resign: (() => Promise<void>) | undefined;
  private leading = false;
  private draining = false;
  private detecting = false;
  private repairRun: Promise<RepairReport> | undefined;
  private scrubRun: Promise<RepairReport> | undefined;
  lastRepair: RepairReport | undefined;
  lastScrub: RepairReport | undefined;
  underReplicated = 0;
  private underCountedMs = 0;
  readRepairs = 0;
  state: 'idle' | 'running' | 'stopped' = 'idle';

  constructor(options: ClusterNodeOptions) {
    this.options = options;
    this.view = new ClusterView(options.catalog, {
      selfId: options.id,
      replicas: options.replicas,
      peerTimeoutMs: options.peerTimeoutMs ?? 10_000,
    });
    this.hints = HintQueue.open(options.dataDir);
    this.chunks = new ReplicatedChunkStore(options.local, this.view, this.hints, {
      readRepaired: () => this.readRepairs++,
    });
  }

  /** This node runs the failure detector now. */
  get leader(): boolean {
    return this.leading;
  }

  get member(): MemberRecord {
    return {
      id: this.options.id,
      url: this.options.url,
      joinedMs: Date.now(),
      ...(this.options.capacity?.() ?? {}),
    };
  }

  async start(): Promise<void> {
    const catalog = this.options.catalog;
    let token = await catalog.getSetting(NODE_TOKEN_SETTING);
    if (!token) {
      await catalog.putSetting(NODE_TOKEN_SETTING, await this.options.createNodeToken());
      token = (await catalog.getSetting(NODE_TOKEN_SETTING))!;
    }
    this.view.setToken(token);
    const ttl = this.options.heartbeatTtlMs ?? 5_000;
    await catalog.join(this.member, ttl);
    await this.view.refresh();
    this.state = 'running';
    this.every(Math.min(1_000, ttl / 2), () => this.view.refresh());
    this.every(250, () => this.drainHints());
    this.resign = await catalog.campaign(FAILURE_DETECTOR, this.options.id, ttl, (leading) => {
      this.leading = leading;
    });
    this.every(500, () => this.detectFailures());
    const repairEvery = this.options.repairIntervalMs ?? 60_000;
    if (repairEvery > 0) this.every(repairEvery, () => this.repair().then(() => undefined));
    const scrubEvery = this.options.scrubIntervalMs ?? 3_600_000;
    if (scrubEvery > 0) this.every(scrubEvery, () => this.scrub().then(() => undefined));
  }

  async stop(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'stopped';
    for (const t of this.timers.splice(0)) clearInterval(t);
    await Promise.allSettled([this.repairRun, this.scrubRun]);
    await this.resign?.().catch(() => undefined);
    await this.options.catalog.leave(this.options.id).catch(() => undefined);
    this.view.close();
    this.hints.close();
  }

  private every(ms: number, task: () => Promise<unknown>): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.state !== 'running') return;
      busy = true;
      task()
        .catch(() => undefined)
        .finally(() => (busy = false));
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  /** The write's mode: asked for, else the namespace's setting, else the node's default. */
  async modeFor(
    namespace: string | undefined,
    asked: string | undefined,
  ): Promise<ReplicationMode> {
    const mode =
      asked ??
      (namespace ? await this.options.catalog.getSetting(`replication/${namespace}`) : undefined) ??
      this.options.defaultMode;
    if (mode !== 'sync' && mode !== 'quorum' && mode !== 'async') {
      throw new TongbuError('BAD_ARGUMENT', `unknown replication mode ${JSON.stringify(mode)}`);
    }
    return mode;
  }

  /** A namespace's own mode (setting `replication/<ns>`), read at most every 2 s. */
  private async namespaceMode(namespace: string): Promise<string | undefined> {
    const hit = this.modes.get(namespace);
    if (hit && hit.untilMs > Date.now()) return hit.mode;
    const mode = await this.options.catalog.getSetting(`replication/${namespace}`);
    if (this.modes.size >= 10_000) this.modes.clear();
    this.modes.set(namespace, { mode, untilMs: Date.now() + 2_000 });
    return mode;
  }

  // ---- hints ----

  /** Pushes queued chunks to replicas that are live again; forgets hints for removed members. */
  async drainHints(): Promise<number> {
    if (this.draining) return 0;
    this.draining = true;
    let pushed = 0;
    try {
      for (const [node] of this.hints.counts()) {
        if (!this.view.member(node)) {
          this.hints.forget(node);
          continue;
        }
        if (!this.view.isLive(node)) continue;
        for (;;) {
          const hashes = this.hints.take(node, HINT_BATCH);
          if (hashes.length === 0) break;
          const frames = this.localFrames(hashes);
          await this.view.peer(node)!.store(frames);
          this.hints.remove(node, hashes);
          pushed += frames.length;
        }
      }
    } finally {
      this.draining = false;
    }
    return pushed;
  }

  /** The intact local copies of `hashes` (a copy gone or damaged is left to anti-entropy). */
  private localFrames(hashes: readonly ContentHash[]): ChunkFrame[] {
    const frames: ChunkFrame[] = [];
    for (const hash of hashes) {
      try {
        frames.push({ hash, bytes: this.options.local.getSync(hash) });
      } catch {
        // not here any more
      }
    }
    return frames;
  }

  // ---- failure detection (leader only) ----

  private async detectFailures(): Promise<void> {
    if (!this.leading || this.detecting) return;
    this.detecting = true;
    try {
      const grace = this.options.downGraceMs ?? 300_000;
      const dead = { ...this.view.deadSet() };
      let changed = false;
      const now = Date.now();
      for (const s of this.view.members()) {
        const id = s.member.id;
        if (s.live && dead[id] !== undefined) {
          delete dead[id];
          changed = true;
        } else if (!s.live && dead[id] === undefined) {
          const since = this.view.downSince.get(id) ?? now;
          if (now - since >= grace) {
            dead[id] = since;
            changed = true;
          }
        }
      }
      for (const id of Object.keys(dead)) {
        if (!this.view.member(id)) {
          delete dead[id];
          changed = true;
        }
      }
      if (changed) {
        await this.options.catalog.putSetting(DEAD_SETTING, JSON.stringify(dead));
        await this.view.refresh();
      }
    } finally {
      this.detecting = false;
    }
  }

  // ---- anti-entropy ----

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
    const self = this.options.id;
    for (const o of this.options.local.entries()) {
      const ids = placeReplicas(o.hash, nodes, query.replicas).map((n) => n.id);
      if (ids.includes(self) && ids.includes(query.requester)) visit(o.hash);
    }
  }

  /** One anti-entropy pass (or the one running). */
  repair(): Promise<RepairReport> {
    this.repairRun ??= this.repairPass().finally(() => (this.repairRun = undefined));
    return this.repairRun;
  }

  private async repairPass(): Promise<RepairReport> {
    await this.view.refresh();
    const self = this.options.id;
    const members = this.view.placementIds();
    const replicas = this.options.replicas;
    const report: RepairReport = {
      kind: 'anti-entropy',
      state: 'running',
      startedMs: Date.now(),
      checked: 0,
      total: this.options.local.stats().objects,
      found: 0,
      repaired: 0,
      repairedBytes: 0,
      remaining: 0,
      rangesCompared: 0,
      rangesDiffering: 0,
    };
    this.lastRepair = report;
    try {
      // One scan: digests per peer, handoff copies, and the under-replicated count.
      const nodes = members.map(placementNode);
      const perPeer = new Map<string, ReturnType<typeof emptyRanges>>();
      const handoff: ContentHash[] = [];
      let under = 0;
      for (const o of this.options.local.entries()) {
        report.checked++;
        const ids = placeReplicas(o.hash, nodes, replicas).map((n) => n.id);
        if (!ids.includes(self)) {
          handoff.push(o.hash);
          continue;
        }
        const firstLive = ids.find((id) => this.view.isLive(id));
        if (firstLive === self && ids.some((id) => !this.view.isLive(id))) under++;
        for (const id of ids) {
          if (id === self) continue;
          let ranges = perPeer.get(id);
          if (!ranges) perPeer.set(id, (ranges = emptyRanges()));
          addToRange(ranges, o.hash);
        }
      }
      this.underReplicated = under;
      // Resume: peers already done in an interrupted pass over the same members are skipped.
      const cursor = this.readCursor(members);
      for (const peerId of [...perPeer.keys()].sort()) {
        if (this.state !== 'running') break;
        if (cursor.done.includes(peerId) || !this.view.isLive(peerId)) continue;
        const peer = this.view.peer(peerId)!;
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
          for (const o of this.options.local.entries()) {
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
      report.state = this.state === 'running' ? 'done' : 'failed';
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
    const peer = this.view.peer(peerId)!;
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
    const peer = this.view.peer(peerId)!;
    const limit = this.options.repairBytesPerSec ?? 200 * 1024 * 1024;
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
      if (this.state !== 'running') return;
      const [frame] = this.localFrames([hash]);
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
    for (const h of handoff)
      for (const n of placeReplicas(h, nodes, this.options.replicas))
        byNode.set(n.id, [...(byNode.get(n.id) ?? []), h]);
    const unconfirmed = new Set<ContentHash>();
    for (const [id, hashes] of byNode) {
      if (!this.view.isLive(id)) {
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
      if (!unconfirmed.has(h) && !this.hints.queued(h)) this.options.local.remove(h);
  }

  private readCursor(members: readonly string[]): { done: string[] } {
    const raw = this.hints.getState('repair-cursor');
    if (!raw) return { done: [] };
    const saved = JSON.parse(raw) as { members: string[]; done: string[] };
    return saved.members.join(',') === members.join(',') ? { done: saved.done } : { done: [] };
  }

  private writeCursor(members: readonly string[], done: string[] | undefined): void {
    this.hints.setState(
      'repair-cursor',
      done === undefined ? undefined : JSON.stringify({ members, done }),
    );
  }

  // ---- scrub ----

  /** One scrub pass (or the one running). */
  scrub(): Promise<RepairReport> {
    this.scrubRun ??= this.scrubPass().finally(() => (this.scrubRun = undefined));
    return this.scrubRun;
  }

  private async scrubPass(): Promise<RepairReport> {
    const local = this.options.local;
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
    this.lastScrub = report;
    const limit = this.options.scrubBytesPerSec ?? 100 * 1024 * 1024;
    const resumeAfter = this.hints.getState('scrub-cursor');
    let windowStart = Date.now();
    let windowBytes = 0;
    try {
      for (const o of local.entries()) {
        if (this.state !== 'running') break;
        if (resumeAfter !== undefined && o.hash <= resumeAfter) continue;
        report.checked++;
        try {
          local.getSync(o.hash);
        } catch (err) {
          if (!(err instanceof TongbuError) || err.code !== 'HASH_MISMATCH') throw err;
          report.found++;
          report.remaining++;
          const good = await this.chunks.fetchFromPeers(o.hash);
          if (good) {
            local.remove(o.hash);
            local.storeChecked(good, o.hash);
            report.repaired++;
            report.repairedBytes += good.length;
            report.remaining--;
          }
        }
        windowBytes += o.size;
        if (report.checked % 1_000 === 0) this.hints.setState('scrub-cursor', o.hash);
        const minMs = (windowBytes / limit) * 1000;
        const spent = Date.now() - windowStart;
        if (minMs - spent > 20) {
          await sleep(minMs - spent);
          windowStart = Date.now();
          windowBytes = 0;
        }
      }
      await local.sync();
      this.hints.setState('scrub-cursor', undefined);
      report.state = this.state === 'running' ? 'done' : 'failed';
    } catch (err) {
      report.state = 'failed';
      report.error = (err as Error).message;
    }
    report.finishedMs = Date.now();
    return report;
  }

  // ---- status ----

  /**
   * Chunks held here with a replica on a node that is down now, each counted
   * by its first live holder only (so the cluster's sum counts it once).
   * One pass over the local index, at most every 5 s.
   */
  countUnderReplicated(): number {
    const now = Date.now();
    if (now - this.underCountedMs < 5_000) return this.underReplicated;
    this.underCountedMs = now;
    const ids = this.view.placementIds();
    if (ids.every((id) => this.view.isLive(id))) return (this.underReplicated = 0);
    let under = 0;
    for (const o of this.options.local.entries()) {
      const placed = this.view.replicasOf(o.hash);
      if (
        placed.find((id) => this.view.isLive(id)) === this.options.id &&
        placed.some((id) => !this.view.isLive(id))
      )
        under++;
    }
    return (this.underReplicated = under);
  }

  status(): NodeStatus {
    const stats = this.options.local.stats();
    const hints = Object.fromEntries(this.hints.counts());
    return {
      id: this.options.id,
      url: this.options.url,
      objects: stats.objects,
      bytes: stats.bytes,
      ...(this.options.capacity?.() ?? {}),
      hints,
      lag: Object.values(hints).reduce((a, b) => a + b, 0),
      underReplicated: this.countUnderReplicated(),
      leader: this.leading,
      ...(this.lastRepair ? { repair: this.lastRepair } : {}),
      ...(this.lastScrub ? { scrub: this.lastScrub } : {}),
      readRepairs: this.readRepairs,
    };
  }

  /** Every member with its health and, for live ones, its own figures. */
  async clusterStatus(): Promise<ClusterStatus> {
    await this.view.refresh();
    const dead = this.view.deadSet();
    const nodes = await Promise.all(
      this.view.members().map(async (s): Promise<ClusterMemberStatus> => {
        const id = s.member.id;
        const health = s.live ? 'up' : dead[id] !== undefined ? 'dead' : 'down';
        let figures: NodeStatus | undefined;
        let error: string | undefined;
        if (id === this.options.id) figures = this.status();
        else if (s.live) {
          try {
            figures = (await this.view.peer(id)!.status()) as NodeStatus;
          } catch (err) {
            error = (err as Error).message;
          }
        }
        return {
          id,
          url: s.member.url,
          health,
          ...(figures ? { status: figures } : {}),
          ...(error ? { error } : {}),
        };
      }),
    );
    const lag = nodes.reduce((n, m) => n + (m.status?.lag ?? 0), 0);
    const underReplicated = nodes.reduce((n, m) => n + (m.status?.underReplicated ?? 0), 0);
    return {
      replicas: this.options.replicas,
      defaultMode: this.options.defaultMode,
      leader: (await this.options.catalog.leader(FAILURE_DETECTOR)) ?? null,
      nodes,
      lag,
      underReplicated,
    };
  }

  /** Forgets a member for good: placement moves its chunks to the others. */
  async removeMember(id: string): Promise<boolean> {
    if (id === this.options.id)
      throw new TongbuError('BAD_ARGUMENT', 'a node cannot remove itself');
    const removed = await this.options.catalog.removeMember(id);
    const dead = { ...this.view.deadSet() };
    if (dead[id] !== undefined) {
      delete dead[id];
      await this.options.catalog.putSetting(DEAD_SETTING, JSON.stringify(dead));
    }
    this.hints.forget(id);
    await this.view.refresh();
    return removed;
  }
}

export interface ClusterMemberStatus {
  readonly id: string;
  readonly url: string;
  readonly health: 'up' | 'down' | 'dead';
  readonly status?: NodeStatus;
  readonly error?: string;
}

export interface ClusterStatus {
  readonly replicas: number;
  readonly defaultMode: ReplicationMode;
  readonly leader: string | null;
  readonly nodes: readonly ClusterMemberStatus[];
  /** Chunks queued for a replica, over all nodes. */
  readonly lag: number;
  readonly underReplicated: number;
}

/** A fresh node id: `n-` and 12 random hex digits. */
export function newNodeId(): string {
  return `n-${randomBytes(6).toString('hex')}`;
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
