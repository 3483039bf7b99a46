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

/** Store requests one peer has in flight at once; further writes wait and go out together. */
const STORES_IN_FLIGHT = 4;
/** The bytes one coalesced store request carries at most (a single larger write goes alone). */
const COALESCED_BYTES = 16 * 1024 * 1024;

/** Writes waiting for a store request to a peer: sent together, settled together. */
interface WaitingStore {
  readonly frames: ChunkFrame[];
  bytes: number;
  readonly done: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function waitingStore(): WaitingStore {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { frames: [], bytes: 0, done, resolve, reject };
}

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
  private storesInFlight = 0;
  private readonly waiting: WaitingStore[] = [];

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

  /**
   * Stores chunks on the peer; resolves once they are durable there. While
   * STORES_IN_FLIGHT requests are out, concurrent writes are coalesced into
   * the next request (group commit: one request and one fsync on the peer
   * for many small commits).
   */
  store(frames: readonly ChunkFrame[]): Promise<void> {
    if (frames.length === 0) return Promise.resolve();
    if (this.storesInFlight < STORES_IN_FLIGHT) return this.sendStore(frames);
    const bytes = frames.reduce((n, f) => n + f.bytes.length, 0);
    let next = this.waiting.at(-1);
    if (!next || (next.bytes > 0 && next.bytes + bytes > COALESCED_BYTES)) {
      next = waitingStore();
      this.waiting.push(next);
    }
    next.frames.push(...frames);
    next.bytes += bytes;
    return next.done;
  }

  private async sendStore(frames: readonly ChunkFrame[]): Promise<void> {
    this.storesInFlight++;
    try {
      await this.client.call('POST', `${INTERNAL}/chunks`, encodeBatch(frames));
    } finally {
      this.storesInFlight--;
      const next = this.waiting.shift();
      if (next) {
        this.sendStore(next.frames).then(
          () => next.resolve(),
          (err: unknown) => next.reject(err),
        );
      }
    }
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
