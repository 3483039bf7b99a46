/**
 * The catalog on etcd, for a cluster across machines. Every key lives under
 * a prefix (`/tongbu/` by default), so several stores share one etcd; the
 * layout is in `etcd-keys.ts`. The connection, its deadlines and retries and
 * the mapping of failures are in `etcd-client.ts`; heartbeats, campaigns and
 * the ref feed are services of their own (`leased-key.ts`, `candidate.ts`,
 * `etcd-ref-feed.ts`), stopped by `close`.
 */
import { Range, type Etcd3, type Namespace } from 'etcd3';
import { TongbuError } from '../../core/errors.js';
import type { ContentHash } from '../../core/hash.js';
import type {
  ClusterCatalog,
  MemberRecord,
  MemberStatus,
  ReadConsistency,
  RefEvent,
  RefFeed,
  RefRecord,
  TokenRecord,
} from '../catalog.js';
import { Candidate } from './candidate.js';
import { createEtcdClient, parseHosts, rangeAll, toTongbuError } from './etcd-client.js';
import {
  byBytes,
  commitOf,
  leaderKey,
  liveKey,
  memberKey,
  refKey,
  refValue,
  secretKey,
  tokenKey,
  ttlSeconds,
} from './etcd-keys.js';
import { EtcdRefFeed } from './etcd-ref-feed.js';
import { LeasedKey } from './leased-key.js';

export class EtcdCatalog implements ClusterCatalog {
  /** `h1:2379,h2:2379`, for messages. */
  readonly address: string;
  readonly prefix: string;
  private readonly client: Etcd3;
  private readonly ns: Namespace;
  private readonly heartbeats = new Map<string, LeasedKey>();
  private readonly candidates = new Set<Candidate>();
  private readonly feeds = new Set<EtcdRefFeed>();
  private closed = false;

  private constructor(client: Etcd3, address: string, prefix: string) {
    this.client = client;
    this.ns = client.namespace(prefix);
    this.address = address;
    this.prefix = prefix;
  }

  /** Connects and reads once: an unreachable etcd fails here, within seconds. */
  static async open(url: string, options: { prefix?: string } = {}): Promise<EtcdCatalog> {
    const hosts = parseHosts(url);
    const client = createEtcdClient(hosts);
    const prefix = options.prefix ?? '/tongbu/';
    const catalog = new EtcdCatalog(
      client,
      hosts.join(','),
      prefix.endsWith('/') ? prefix : `${prefix}/`,
    );
    try {
      await catalog.revision();
    } catch (err) {
      client.close();
      throw err;
    }
    return catalog;
  }

  getRef(
    namespace: string,
    name: string,
    options: { readonly consistency?: ReadConsistency } = {},
  ): Promise<RefRecord | undefined> {
    return this.call('read a ref', async () => {
      const res = await this.ns
        .get(refKey(namespace, name))
        .serializable(options.consistency === 'stale')
        .exec();
      const kv = res.kvs[0];
      return kv && { namespace, name, commit: commitOf(kv), version: Number(kv.version) };
    });
  }

  compareAndSwapRef(
    namespace: string,
    name: string,
    expected: ContentHash | undefined,
    next: ContentHash | undefined,
  ): Promise<boolean> {
    const key = refKey(namespace, name);
    return this.call('move a ref', async () => {
      const txn =
        expected === undefined
          ? this.ns.if(key, 'Create', '==', 0)
          : this.ns.if(key, 'Value', '==', refValue(expected));
      const write =
        next === undefined ? this.ns.delete().key(key) : this.ns.put(key).value(refValue(next));
      return (await txn.then(write).commit()).succeeded;
    });
  }

  listRefs(namespace: string, prefix = ''): Promise<RefRecord[]> {
    return this.call('list refs', async () => {
      const start = refKey(namespace, '');
      const { kvs } = await rangeAll(this.ns, start + prefix);
      return kvs.map((kv) => ({
        namespace,
        name: kv.key.toString().slice(start.length),
        commit: commitOf(kv),
        version: Number(kv.version),
      }));
    });
  }

  /** One read of one key per namespace: from each namespace to the next. */
  listNamespaces(): Promise<string[]> {
    return this.call('list namespaces', async () => {
      const names: string[] = [];
      const end = Range.prefix('refs/').end;
      let start = Buffer.from('refs/');
      let revision: string | undefined;
      for (;;) {
        const query = this.ns.getAll().inRange({ start, end }).limit(1);
        if (revision !== undefined) query.revision(revision);
        const res = await query.exec();
        revision ??= res.header.revision;
        const key = res.kvs[0]?.key.toString();
        if (key === undefined) break;
        const encoded = key.slice('refs/'.length, key.indexOf('/', 'refs/'.length));
        names.push(decodeURIComponent(encoded));
        // '0' follows '/': past every ref of this namespace.
        start = Buffer.from(`refs/${encoded}0`);
      }
      return names.sort(byBytes);
    });
  }

  putToken(token: TokenRecord): Promise<void> {
    return this.call('store a token', async () => {
      const res = await this.ns
        .if(tokenKey(token.id), 'Create', '==', 0)
        .and(secretKey(token.secretHash), 'Create', '==', 0)
        .then(
          this.ns.put(tokenKey(token.id)).value(JSON.stringify(token)),
          this.ns.put(secretKey(token.secretHash)).value(token.id),
        )
        .commit();
      if (!res.succeeded) {
        throw new TongbuError('CONFLICT', `token ${token.id} or its secret exists already`, {
          data: { id: token.id },
        });
      }
    });
  }

  findToken(secretHash: string): Promise<TokenRecord | undefined> {
    return this.call('read a token', async () => {
      const id = await this.ns.get(secretKey(secretHash)).string();
      if (id === null) return undefined;
      const token = await this.ns.get(tokenKey(id)).string();
      const record = token === null ? undefined : (JSON.parse(token) as TokenRecord);
      return record?.secretHash === secretHash ? record : undefined;
    });
  }

  listTokens(): Promise<TokenRecord[]> {
    return this.call('list tokens', async () => {
      const { kvs } = await rangeAll(this.ns, 'tokens/id/');
      return kvs
        .map((kv) => JSON.parse(kv.value.toString()) as TokenRecord)
        .sort((a, b) => a.createdMs - b.createdMs || byBytes(a.id, b.id));
    });
  }

  removeToken(id: string): Promise<boolean> {
    return this.call('remove a token', async () => {
      const kv = (await this.ns.get(tokenKey(id)).exec()).kvs[0];
      if (kv === undefined) return false;
      const { secretHash } = JSON.parse(kv.value.toString()) as TokenRecord;
      // Tokens never change, so the record read is the one deleted (or gone).
      const res = await this.ns
        .if(tokenKey(id), 'Mod', '==', kv.mod_revision)
        .then(this.ns.delete().key(tokenKey(id)), this.ns.delete().key(secretKey(secretHash)))
        .commit();
      return res.succeeded;
    });
  }

  join(member: MemberRecord, ttlMs: number): Promise<void> {
    const { id } = member;
    return this.call(`join member ${id}`, async () => {
      await this.ns.put(memberKey(id)).value(JSON.stringify(member)).exec();
      const beat = new LeasedKey(this.ns, liveKey(id), id, ttlSeconds(ttlMs));
      await beat.start();
      // The live key moved to the new lease: revoking the old one keeps it.
      const previous = this.heartbeats.get(id);
      this.heartbeats.set(id, beat);
      await previous?.stop().catch(() => undefined);
    });
  }

  leave(id: string): Promise<void> {
    return this.call(`leave member ${id}`, async () => {
      const beat = this.heartbeats.get(id);
      this.heartbeats.delete(id);
      await beat?.stop();
      // Held by another process of this id, the key goes too.
      await this.ns.delete().key(liveKey(id)).exec();
    });
  }

  members(): Promise<MemberStatus[]> {
    return this.call('list members', async () => {
      const members = await rangeAll(this.ns, 'members/');
      const live = await rangeAll(this.ns, 'live/', members.revision);
      const liveIds = new Set(live.kvs.map((kv) => kv.value.toString()));
      return members.kvs
        .map((kv) => JSON.parse(kv.value.toString()) as MemberRecord)
        .sort((a, b) => byBytes(a.id, b.id))
        .map((member) => ({ member, live: liveIds.has(member.id) }));
    });
  }

  removeMember(id: string): Promise<boolean> {
    return this.call(`remove member ${id}`, async () => {
      const beat = this.heartbeats.get(id);
      this.heartbeats.delete(id);
      await beat?.stop();
      const res = await this.ns
        .if(memberKey(id), 'Create', '>', 0)
        .then(this.ns.delete().key(memberKey(id)), this.ns.delete().key(liveKey(id)))
        .else(this.ns.delete().key(liveKey(id)))
        .commit();
      return res.succeeded;
    });
  }

  async campaign(
    role: string,
    id: string,
    ttlMs: number,
    onChange: (leading: boolean) => void,
  ): Promise<() => Promise<void>> {
    const candidate = new Candidate(this.ns, leaderKey(role), id, ttlSeconds(ttlMs), onChange);
    this.candidates.add(candidate);
    try {
      await candidate.start();
    } catch (err) {
      this.candidates.delete(candidate);
      await candidate.stop().catch(() => undefined);
      throw this.toError(err, `campaign for ${role}`);
    }
    return () => {
      this.candidates.delete(candidate);
      return this.call(`resign ${role}`, () => candidate.stop());
    };
  }

  leader(role: string): Promise<string | undefined> {
    return this.call(`read the leader of ${role}`, async () => {
      return (await this.ns.get(leaderKey(role)).string()) ?? undefined;
    });
  }

  async watchRefs(
    afterRevision: number | undefined,
    onEvent: (event: RefEvent) => void,
    onReset: (revision: number) => void,
  ): Promise<RefFeed> {
    const feed = new EtcdRefFeed(this.ns, onEvent, onReset, () => this.revision());
    this.feeds.add(feed);
    try {
      await feed.open(afterRevision);
    } catch (err) {
      this.feeds.delete(feed);
      throw this.toError(err, 'watch refs');
    }
    return {
      stop: async () => {
        this.feeds.delete(feed);
        await feed.stop();
      },
    };
  }

  revision(): Promise<number> {
    return this.call('read the catalog revision', async () => {
      return Number((await this.ns.get('revision').exec()).header.revision);
    });
  }

  getSetting(key: string): Promise<string | undefined> {
    return this.call(`read setting ${key}`, async () => {
      return (await this.ns.get(`settings/${key}`).string()) ?? undefined;
    });
  }

  putSetting(key: string, value: string | undefined): Promise<void> {
    return this.call(`write setting ${key}`, async () => {
      if (value === undefined) await this.ns.delete().key(`settings/${key}`).exec();
      else await this.ns.put(`settings/${key}`).value(value).exec();
    });
  }

  /**
   * Drops etcd's history before the current revision — of the whole etcd,
   * not only this prefix, as its auto-compaction does. Feeds resuming from
   * before it are reset. Returns the revision compacted to.
   */
  compactHistory(): Promise<number> {
    return this.call('compact the history', async () => {
      const revision = await this.revision();
      await this.client.kv.compact({ revision: String(revision), physical: true });
      return revision;
    });
  }

  /** Stops feeds and campaigns, revokes heartbeats (members go down at once), disconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([
      ...[...this.feeds].map((f) => f.stop()),
      ...[...this.candidates].map((c) => c.stop()),
      ...[...this.heartbeats.values()].map((b) => b.stop()),
    ]);
    this.feeds.clear();
    this.candidates.clear();
    this.heartbeats.clear();
    this.client.close();
  }

  private async call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.toError(err, action);
    }
  }

  private toError(err: unknown, action: string): TongbuError {
    return toTongbuError(err, this.address, action);
  }
}
