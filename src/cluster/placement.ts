/**
 * Placement by rendezvous (highest random weight) hashing: every node gets a
 * score for a chunk from the chunk's hash and the node's id, and the R
 * highest scores hold the chunk. No per-chunk location index is kept: any
 * node computes the same replicas from the member list alone, and when a
 * node leaves, only the chunks it held move (each to the next-best node).
 */
import { createHash } from 'node:crypto';
import type { ContentHash } from '../core/hash.js';

export const DEFAULT_REPLICAS = 3;

/** A node as placement sees it: an id and a seed derived from it once. */
export interface PlacementNode {
  readonly id: string;
  readonly seed: number;
}

export function placementNode(id: string): PlacementNode {
  return { id, seed: createHash('sha256').update(id).digest().readUInt32BE(0) };
}

/** murmur3's 32-bit finalizer: a cheap, well-mixed hash of one word. */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The chunk's two leading 32-bit words (the hash is uniform already). */
function chunkWords(hash: ContentHash): [number, number] {
  // `blake3:` is 7 characters; 8 hex digits a word.
  return [parseInt(hash.slice(7, 15), 16), parseInt(hash.slice(15, 23), 16)];
}

function score(node: PlacementNode, words: [number, number]): number {
  return mix(mix(node.seed ^ words[0]) ^ words[1]);
}

/**
 * The `replicas` nodes that hold `hash`, best first; fewer when there are
 * fewer nodes. Ties (vanishingly rare) break by id, so every node agrees.
 */
export function placeReplicas(
  hash: ContentHash,
  nodes: readonly PlacementNode[],
  replicas: number,
): PlacementNode[] {
  const words = chunkWords(hash);
  const scored = nodes.map((node) => ({ node, s: score(node, words) }));
  scored.sort((a, b) => b.s - a.s || (a.node.id < b.node.id ? -1 : a.node.id > b.node.id ? 1 : 0));
  return scored.slice(0, replicas).map((x) => x.node);
}

/** How many acknowledgments a write needs in each replication mode. */
export type ReplicationMode = 'sync' | 'quorum' | 'async';

export const REPLICATION_MODES: readonly ReplicationMode[] = ['sync', 'quorum', 'async'];

export function requiredAcks(mode: ReplicationMode, replicas: number): number {
  if (mode === 'sync') return replicas;
  if (mode === 'quorum') return Math.floor(replicas / 2) + 1;
  return 1;
}

export function isReplicationMode(text: string): text is ReplicationMode {
  return (REPLICATION_MODES as readonly string[]).includes(text);
}
