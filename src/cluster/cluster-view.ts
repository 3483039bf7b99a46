/**
 * What a node knows of its cluster: the members and which are live (from the
 * catalog's heartbeat leases), which are dead (down past the grace period,
 * as the failure-detecting leader recorded them), and from those the
 * placement of any chunk. Refreshed on a timer and on demand; peers are
 * reached through cached PeerClients.
 */
import type { ContentHash } from '../core/hash.js';
import type { ClusterCatalog, MemberRecord, MemberStatus } from '../store/catalog.js';
import { PeerClient } from './peer-client.js';
import { placeReplicas, placementNode, type PlacementNode } from './placement.js';

/** The setting that holds `{id: downSinceMs}` of members down past the grace period. */
export const DEAD_SETTING = 'cluster/dead';
/** The setting that holds the secret nodes use with each other. */
export const NODE_TOKEN_SETTING = 'cluster/node-token';

export interface ViewOptions {
  readonly selfId: string;
  readonly replicas: number;
  readonly peerTimeoutMs: number;
}

export class ClusterView {
  readonly catalog: ClusterCatalog;
  readonly selfId: string;
  readonly replicas: number;
  private readonly peerTimeoutMs: number;
  private token = '';
  private statuses: MemberStatus[] = [];
  private dead: Record<string, number> = {};
  private placement: PlacementNode[] = [];
  private readonly peers = new Map<string, PeerClient>();
  /** When this node first saw each member down (for the leader's grace period). */
  readonly downSince = new Map<string, number>();

  constructor(catalog: ClusterCatalog, options: ViewOptions) {
    this.catalog = catalog;
    this.selfId = options.selfId;
    this.replicas = options.replicas;
    this.peerTimeoutMs = options.peerTimeoutMs;
  }

  setToken(token: string): void {
    this.token = token;
  }

  async refresh(): Promise<void> {
    const [statuses, dead] = await Promise.all([
      this.catalog.members(),
      this.catalog.getSetting(DEAD_SETTING),
    ]);
    this.statuses = statuses;
    this.dead = dead ? (JSON.parse(dead) as Record<string, number>) : {};
    const now = Date.now();
    for (const s of statuses) {
      if (s.live) this.downSince.delete(s.member.id);
      else if (!this.downSince.has(s.member.id)) this.downSince.set(s.member.id, now);
    }
    this.placement = statuses
      .filter((s) => this.dead[s.member.id] === undefined)
      .map((s) => placementNode(s.member.id));
    for (const [id, peer] of this.peers) {
      const current = statuses.find((s) => s.member.id === id)?.member;
      if (!current || current.url !== peer.member.url) {
        peer.close();
        this.peers.delete(id);
      }
    }
  }

  members(): readonly MemberStatus[] {
    return this.statuses;
  }

  deadSet(): Readonly<Record<string, number>> {
    return this.dead;
  }

  /** The ids of the members placement uses (not dead), sorted. */
  placementIds(): string[] {
    return this.placement.map((n) => n.id).sort();
  }

  placementNodes(): readonly PlacementNode[] {
    return this.placement;
  }

  isLive(id: string): boolean {
    if (id === this.selfId) return true;
    return this.statuses.some((s) => s.member.id === id && s.live);
  }

  member(id: string): MemberRecord | undefined {
    return this.statuses.find((s) => s.member.id === id)?.member;
  }

  /** The ids of the nodes that hold `hash`, best first. */
  replicasOf(hash: ContentHash): string[] {
    return placeReplicas(hash, this.placement, this.replicas).map((n) => n.id);
  }

  /** Replicas a write waits for: R, or fewer when the cluster is smaller. */
  replicaCount(): number {
    return Math.min(this.replicas, this.placement.length);
  }

  peer(id: string): PeerClient | undefined {
    if (id === this.selfId) return undefined;
    let peer = this.peers.get(id);
    if (!peer) {
      const member = this.member(id);
      if (!member) return undefined;
      peer = new PeerClient(member, this.token, this.peerTimeoutMs);
      this.peers.set(id, peer);
    }
    return peer;
  }

  close(): void {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
  }
}
