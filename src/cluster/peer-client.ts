/**
 * What one node asks another: store replicas, say which chunks it lacks,
 * hand over chunks it holds, and compare replicas by hash ranges. These are
 * the `/v1/internal/*` routes, authenticated with the cluster's node token.
 * Every call has a deadline: a peer that stops answering (paused, cut off)
 * fails the call as UNAVAILABLE instead of holding the write.
 */
import type { ContentHash } from '../core/hash.js';
import {
  API_PREFIX,
  decodeBatch,
  decodeDigests,
  encodeBatch,
  encodeDigests,
  type ChunkFrame,
} from '../endpoints/tongbu/protocol.js';
import { TongbuClient } from '../endpoints/tongbu/tongbu-client.js';
import type { MemberRecord } from '../store/catalog.js';

export const INTERNAL = `${API_PREFIX}/internal`;

/** Count and XOR of the digests of one hash range (the first byte of the hash). */
export interface RangeDigest {
  readonly count: number;
  readonly xor: string;
}

/** Which chunks a range comparison covers: those placed on both nodes. */
export interface RangeQuery {
  /** The node asking; the answer covers chunks placed on it and on the peer. */
  readonly requester: string;
  /** The placement members both sides use, and R. */
  readonly members: readonly string[];
  readonly replicas: number;
}

export class PeerClient {
  readonly member: MemberRecord;
  private readonly client: TongbuClient;

  constructor(member: MemberRecord, token: string, timeoutMs: number) {
    this.member = member;
    const url = new URL(member.url);
    this.client = new TongbuClient(
      {
        url: member.url,
        tls: url.protocol === 'https:',
        hosts: [url.host],
        namespace: '_',
        prefix: '',
      },
      { token, timeoutMs, connections: 64 },
    );
  }

  /** Stores chunks on the peer; resolves once they are durable there. */
  async store(frames: readonly ChunkFrame[]): Promise<void> {
    if (frames.length > 0)
      await this.client.call('POST', `${INTERNAL}/chunks`, encodeBatch(frames));
  }

  async missing(hashes: readonly ContentHash[]): Promise<ContentHash[]> {
    if (hashes.length === 0) return [];
    const r = await this.client.call('POST', `${INTERNAL}/missing`, [encodeDigests(hashes)]);
    return decodeDigests(r.body);
  }

  /** The chunks of `hashes` the peer holds intact (others are left out). */
  async fetch(hashes: readonly ContentHash[]): Promise<ChunkFrame[]> {
    if (hashes.length === 0) return [];
    const r = await this.client.call('POST', `${INTERNAL}/fetch`, [encodeDigests(hashes)]);
    return decodeBatch(r.body);
  }

  async ranges(query: RangeQuery): Promise<RangeDigest[]> {
    return (
      (await this.client.json('POST', `${INTERNAL}/ranges`, query)) as { ranges: RangeDigest[] }
    ).ranges;
  }

  async rangeHashes(query: RangeQuery, range: number): Promise<ContentHash[]> {
    const r = await this.client.call(
      'POST',
      `${INTERNAL}/range-hashes`,
      [Buffer.from(JSON.stringify({ ...query, range }))],
      'application/json',
    );
    return decodeDigests(r.body);
  }

  async status(): Promise<unknown> {
    return this.client.json('GET', `${INTERNAL}/status`);
  }

  close(): void {
    this.client.close();
  }
}
