/**
 * The catalog keeps the small mutable records of a store: refs (which commit
 * a branch or tag names), and access tokens. Trees, commits and manifests
 * live in the chunk store. One interface, implemented on SQLite (embedded,
 * several processes of one machine may share it) and on etcd (a cluster
 * across machines). `ClusterCatalog` adds what the nodes of one replicated
 * store share: membership with heartbeats, leader election, a change feed of
 * ref moves and small cluster-wide settings.
 */
import type { ContentHash } from '../core/hash.js';

export interface RefRecord {
  readonly namespace: string;
  /** `heads/main`, `tags/step-1200`. */
  readonly name: string;
  readonly commit: ContentHash;
  /** Increases with every change of this ref. */
  readonly version: number;
}

export interface TokenRecord {
  readonly id: string;
  /** sha256 of the secret; the secret itself is never stored. */
  readonly secretHash: string;
  /** `pattern:read|write|admin`, e.g. `llama/*:write`. */
  readonly scopes: readonly string[];
  readonly label: string;
  readonly createdMs: number;
}

/**
 * `linearizable` (the default) sees every ref move acknowledged before the
 * read began; `stale` may answer from a follower's older state, faster.
 */
export type ReadConsistency = 'linearizable' | 'stale';

export interface Catalog {
  getRef(
    namespace: string,
    name: string,
    options?: { readonly consistency?: ReadConsistency },
  ): Promise<RefRecord | undefined>;
  /**
   * Moves a ref from `expected` (undefined: the ref must not exist) to
   * `next` (undefined: delete it), atomically. Returns false, changing
   * nothing, when the ref is not at `expected`.
   */
  compareAndSwapRef(
    namespace: string,
    name: string,
    expected: ContentHash | undefined,
    next: ContentHash | undefined,
  ): Promise<boolean>;
  /** Refs of a namespace whose names start with `prefix`, by name. */
  listRefs(namespace: string, prefix?: string): Promise<RefRecord[]>;
  /** Namespaces with at least one ref, sorted. */
  listNamespaces(): Promise<string[]>;

  putToken(token: TokenRecord): Promise<void>;
  findToken(secretHash: string): Promise<TokenRecord | undefined>;
  listTokens(): Promise<TokenRecord[]>;
  removeToken(id: string): Promise<boolean>;

  close(): Promise<void>;
}

/** A node of a replicated store, as it registered itself. */
export interface MemberRecord {
  /** Stable across restarts (kept in the node's data directory). */
  readonly id: string;
  /** Where peers and clients reach it, e.g. `http://127.0.0.1:7701`. */
  readonly url: string;
  readonly joinedMs: number;
  /** Filesystem capacity and use of the node's data directory, when known. */
  readonly capacityBytes?: number;
  readonly usedBytes?: number;
}

export interface MemberStatus {
  readonly member: MemberRecord;
  /** Its heartbeat lease is current. */
  readonly live: boolean;
}

/** One ref move seen by the change feed. */
export interface RefEvent {
  /** Increases with every change in the catalog; resume a feed after it. */
  readonly revision: number;
  readonly namespace: string;
  readonly name: string;
  /** undefined: the ref was deleted. */
  readonly commit: ContentHash | undefined;
}

export interface RefFeed {
  /** Stops the feed; no event is delivered after it resolves. */
  stop(): Promise<void>;
}

export interface ClusterCatalog extends Catalog {
  /**
   * Registers `member` durably (it stays a member until removed) and starts
   * its heartbeat: a lease of `ttlMs` kept alive in the background. While the
   * lease is current the member is live; a process that dies stops renewing,
   * and the member is seen down once the lease expires. Joining again with
   * the same id replaces the record and the lease.
   */
  join(member: MemberRecord, ttlMs: number): Promise<void>;
  /** Ends the heartbeat of `id` and revokes its lease: down at once, still a member. */
  leave(id: string): Promise<void>;
  /** Every member not removed, by id, with whether it is live now. */
  members(): Promise<MemberStatus[]>;
  /** Forgets a member for good; false when there was none. */
  removeMember(id: string): Promise<boolean>;
  /**
   * Campaigns for the leadership of `role` (one leader per role across the
   * cluster, held by a lease of `ttlMs`). `onChange(true)` when `id` becomes
   * the leader, `onChange(false)` when it loses leadership (lease lost,
   * resign). The returned function resigns and stops campaigning.
   */
  campaign(
    role: string,
    id: string,
    ttlMs: number,
    onChange: (leading: boolean) => void,
  ): Promise<() => Promise<void>>;
  /** The current leader of `role`, if any. */
  leader(role: string): Promise<string | undefined>;
  /**
   * The change feed of ref moves, in revision order, starting after
   * `afterRevision` (undefined: from now). When the history after that
   * revision is no longer kept (compaction), `onReset(revision)` is called
   * instead: the caller re-lists the refs, and events follow from `revision`.
   */
  watchRefs(
    afterRevision: number | undefined,
    onEvent: (event: RefEvent) => void,
    onReset: (revision: number) => void,
  ): Promise<RefFeed>;
  /** The catalog's current revision (every change increases it). */
  revision(): Promise<number>;
  /** Small cluster-wide settings, e.g. `replication/<namespace>`. */
  getSetting(key: string): Promise<string | undefined>;
  putSetting(key: string, value: string | undefined): Promise<void>;
}
