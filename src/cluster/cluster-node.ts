/**
 * A node's part in a replicated store, as a service with start and stop:
 *
 * - membership: joins the catalog with a heartbeat lease, refreshes its view
 *   of the members every second;
 * - the hint drainer: pushes queued chunks to replicas that are back;
 * - the failure detector (one leader at a time, by election): marks members
 *   down past the grace period dead, which takes them out of placement, and
 *   un-marks them when they return;
 * - anti-entropy and the scrubber on timers (repair.ts).
 */
import { randomBytes } from 'node:crypto';
import { TongbuError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import type { ClusterCatalog, MemberRecord } from '../store/catalog.js';
import type { ChunkStore } from '../store/chunk-store.js';
import { ClusterView, DEAD_SETTING, NODE_TOKEN_SETTING } from './cluster-view.js';
import { HintQueue } from './hint-queue.js';
import type { RangeDigest, RangeQuery } from './peer-client.js';
import { type ReplicationMode } from './placement.js';
import {
  AntiEntropy,
  localFrames,
  Scrubber,
  type RepairContext,
  type RepairReport,
} from './repair.js';
import { ReplicatedChunkStore } from './replicated-chunk-store.js';

export type { RepairReport } from './repair.js';

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

const FAILURE_DETECTOR = 'failure-detector';
const HINT_BATCH = 512;

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
  readonly antiEntropy: AntiEntropy;
  readonly scrubber: Scrubber;
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
    const context = (bytesPerSec: number): RepairContext => ({
      selfId: options.id,
      replicas: options.replicas,
      local: options.local,
      chunks: this.chunks,
      view: this.view,
      hints: this.hints,
      bytesPerSec,
      running: () => this.state === 'running',
    });
    this.antiEntropy = new AntiEntropy(context(options.repairBytesPerSec ?? 200 * 1024 * 1024));
    this.scrubber = new Scrubber(context(options.scrubBytesPerSec ?? 100 * 1024 * 1024));
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
    await Promise.allSettled([this.antiEntropy.idle(), this.scrubber.idle()]);
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
          const frames = localFrames(this.options.local, hashes);
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

  // ---- repairs (repair.ts) ----

  /** One anti-entropy pass (or the one running). */
  repair(): Promise<RepairReport> {
    return this.antiEntropy.run();
  }

  /** One scrub pass (or the one running). */
  scrub(): Promise<RepairReport> {
    return this.scrubber.run();
  }

  rangeDigests(query: RangeQuery): RangeDigest[] {
    return this.antiEntropy.rangeDigests(query);
  }

  rangeHashes(query: RangeQuery, range: number): ContentHash[] {
    return this.antiEntropy.rangeHashes(query, range);
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
      ...(this.antiEntropy.last ? { repair: this.antiEntropy.last } : {}),
      ...(this.scrubber.last ? { scrub: this.scrubber.last } : {}),
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
