/**
 * The catalog on etcd, for a cluster across machines. Every key lives under
 * a prefix (`/tongbu/` by default), so several stores share one etcd:
 *
 *   refs/<namespace>/<name>   {"commit": …}; the ref's version is the key's
 *   tokens/id/<id>            the token record
 *   tokens/secret/<hash>      its id, written in the same transaction
 *   members/<id>              the member record, durable
 *   live/<id>                 held by the member's heartbeat lease
 *   leaders/<role>            the leader's id, held by its lease
 *   settings/<key>            the value
 *
 * Namespaces, ids and roles are percent-encoded (they may hold '/'), so the
 * refs of a namespace are one range and listing namespaces skips from one
 * namespace's range to the next. Unary calls have a deadline, and a call is
 * tried on another host only when it never reached one: a compare-and-swap
 * whose answer was lost is an error, never a second attempt that says false.
 */
import { handleWhen, isBrokenCircuitError, retry } from 'cockatiel';
import {
  Etcd3,
  EtcdAuthenticationFailedError,
  EtcdInvalidAuthTokenError,
  EtcdPermissionDeniedError,
  GRPCUnavailableError,
  Range,
  isRecoverableError,
  type IEvent,
  type IKeyValue,
  type Lease,
  type Namespace,
  type Watcher,
} from 'etcd3';
import { TongbuError, type ErrorCode } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import type {
  ClusterCatalog,
  MemberRecord,
  MemberStatus,
  ReadConsistency,
  RefEvent,
  RefFeed,
  RefRecord,
  TokenRecord,
} from './catalog.js';

/** Deadline of every unary call (and of setting up a watch). */
const CALL_TIMEOUT_MS = 3000;
/** Pause before a lost lease, campaign or feed is set up again. */
const RETRY_MS = 1000;
const PAGE = 1000;

const enc = encodeURIComponent;
const refKey = (namespace: string, name: string): string => `refs/${enc(namespace)}/${name}`;
const refValue = (commit: ContentHash): string => JSON.stringify({ commit });
const commitOf = (kv: IKeyValue): ContentHash =>
  (JSON.parse(kv.value.toString()) as { commit: ContentHash }).commit;
const tokenKey = (id: string): string => `tokens/id/${enc(id)}`;
const secretKey = (secretHash: string): string => `tokens/secret/${secretHash}`;
const memberKey = (id: string): string => `members/${enc(id)}`;
const liveKey = (id: string): string => `live/${enc(id)}`;
const leaderKey = (role: string): string => `leaders/${enc(role)}`;
/** etcd leases count whole seconds. */
const ttlSeconds = (ttlMs: number): number => Math.max(1, Math.ceil(ttlMs / 1000));
/** UTF-8 byte order, as etcd and SQLite sort. */
const byBytes = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** Failures of a call that never reached a host: safe to try the next one. */
const unsent = (err: Error): boolean =>
  isBrokenCircuitError(err) ||
  (err instanceof GRPCUnavailableError && err.message.includes('No connection established'));

/** `etcd://h1:2379,h2:2379` or `http://…` → `['h1:2379', 'h2:2379']`. */
function parseHosts(url: string): string[] {
  const m = /^(?:etcd|http):\/\/([^/]+)\/?$/i.exec(url);
  const hosts = (m?.[1] ?? '').split(',').filter(Boolean);
  if (hosts.length === 0) {
    throw new TongbuError('BAD_URL', `expected etcd://HOST:PORT[,HOST:PORT…], got ${url}`, {
      data: { url },
    });
  }
  return hosts.map((h) => (/:\d+$/.test(h) ? h : `${h}:2379`));
}

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
    const client = new Etcd3({
      hosts,
      defaultCallOptions: (context) =>
        context.isStream ? {} : { deadline: Date.now() + CALL_TIMEOUT_MS },
      faultHandling: { global: retry(handleWhen(unsent), { maxAttempts: hosts.length }) },
    });
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
      const { kvs } = await this.rangeAll(start + prefix);
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
      const { kvs } = await this.rangeAll('tokens/id/');
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
      const members = await this.rangeAll('members/');
      const live = await this.rangeAll('live/', members.revision);
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

  /** Every key under `prefix`, a page at a time, all at one revision. */
  private async rangeAll(
    prefix: string,
    atRevision?: string,
  ): Promise<{ kvs: IKeyValue[]; revision: string }> {
    const kvs: IKeyValue[] = [];
    const end = Range.prefix(prefix).end;
    let start = Buffer.from(prefix);
    let revision = atRevision;
    for (;;) {
      const query = this.ns.getAll().inRange({ start, end }).limit(PAGE);
      if (revision !== undefined) query.revision(revision);
      const res = await query.exec();
      revision ??= res.header.revision;
      kvs.push(...res.kvs);
      const last = res.kvs[res.kvs.length - 1];
      if (!res.more || last === undefined) return { kvs, revision };
      start = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  private async call<T>(action: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.toError(err, action);
    }
  }

  private toError(err: unknown, action: string): TongbuError {
    if (err instanceof TongbuError) return err;
    const message = err instanceof Error ? err.message : String(err);
    let code: ErrorCode = 'INTERNAL';
    if (err instanceof EtcdPermissionDeniedError) code = 'PERMISSION_DENIED';
    else if (
      err instanceof EtcdAuthenticationFailedError ||
      err instanceof EtcdInvalidAuthTokenError
    ) {
      code = 'UNAUTHORIZED';
    } else if (err instanceof Error && (isRecoverableError(err) || isBrokenCircuitError(err))) {
      code = 'CONNECTION_FAILED';
    }
    return new TongbuError(code, `etcd at ${this.address}: cannot ${action}: ${message}`, {
      data: { url: this.address },
      cause: err,
    });
  }
}

/** A key held by a lease of its own, put again on a new lease when etcd lets one lapse. */
class LeasedKey {
  private lease: Lease | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ns: Namespace,
    private readonly key: string,
    private readonly value: string,
    private readonly ttlSeconds: number,
  ) {}

  async start(): Promise<void> {
    const lease = this.ns.lease(this.ttlSeconds);
    lease.on('lost', () => {
      if (this.stopped || lease !== this.lease) return;
      this.lease = undefined;
      this.restartLater();
    });
    try {
      await lease.put(this.key).value(this.value).exec();
    } catch (err) {
      void lease.revoke().catch(() => undefined);
      throw err;
    }
    this.lease = lease;
    if (this.stopped) await this.stop();
  }

  /** Ends the heartbeat and revokes the lease, deleting the key. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const lease = this.lease;
    this.lease = undefined;
    await lease?.revoke();
  }

  private restartLater(): void {
    this.timer = setTimeout(() => {
      if (!this.stopped) this.start().catch(() => this.restartLater());
    }, RETRY_MS);
    this.timer.unref();
  }
}

/**
 * One campaign for `key`: whoever creates it (on its own lease) leads until
 * the key goes (resign, or the lease lapses); the others watch for that.
 */
class Candidate {
  private lease: Lease | undefined;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** Ends the current wait for the leader's key to go. */
  private wake: (() => void) | undefined;

  constructor(
    private readonly ns: Namespace,
    private readonly key: string,
    private readonly id: string,
    private readonly ttlSeconds: number,
    private readonly onChange: (leading: boolean) => void,
  ) {}

  /** Grants a lease and tries once; a follower goes on waiting in the background. */
  async start(): Promise<void> {
    const lease = this.ns.lease(this.ttlSeconds);
    this.lease = lease;
    lease.on('lost', () => this.lost(lease));
    let waitFrom: number | undefined;
    let leaseId: string;
    try {
      leaseId = await lease.grant();
      waitFrom = await this.tryToLead(lease, leaseId);
    } catch (err) {
      if (this.lease === lease) this.lease = undefined;
      void lease.revoke().catch(() => undefined);
      throw err;
    }
    if (waitFrom !== undefined) void this.follow(lease, leaseId, waitFrom);
  }

  /** Resigns: the key goes with the lease, and another candidate takes over. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wake?.();
    const lease = this.lease;
    this.lease = undefined;
    if (this.leading) {
      this.leading = false;
      this.onChange(false);
    }
    await lease?.revoke();
  }

  /** undefined when leading (or stopped); else the revision to watch the leader's key from. */
  private async tryToLead(lease: Lease, leaseId: string): Promise<number | undefined> {
    const res = await this.ns
      .if(this.key, 'Create', '==', 0)
      .then(this.ns.put(this.key).value(this.id).lease(leaseId))
      .commit();
    if (this.stopped || lease !== this.lease) return undefined;
    if (!res.succeeded) return Number(res.header.revision) + 1;
    this.leading = true;
    this.onChange(true);
    return undefined;
  }

  private async follow(lease: Lease, leaseId: string, from: number): Promise<void> {
    try {
      let waitFrom: number | undefined = from;
      while (waitFrom !== undefined) {
        await this.keyGone(waitFrom);
        if (this.stopped || lease !== this.lease) return;
        waitFrom = await this.tryToLead(lease, leaseId);
      }
    } catch {
      if (this.stopped || lease !== this.lease) return;
      this.lease = undefined;
      void lease.revoke().catch(() => undefined);
      this.restartLater();
    }
  }

  /** Resolves when the key is deleted after `revision` (or the watch fails, or stop). */
  private keyGone(revision: number): Promise<void> {
    return new Promise((resolve) => {
      const watcher = this.ns.watch().key(this.key).startRevision(String(revision)).watcher();
      const done = (): void => {
        this.wake = undefined;
        watcher.cancel().catch(() => undefined);
        resolve();
      };
      this.wake = done;
      watcher.on('delete', done);
      watcher.on('error', done);
    });
  }

  private lost(lease: Lease): void {
    if (this.stopped || lease !== this.lease) return;
    this.lease = undefined;
    this.wake?.();
    if (this.leading) {
      this.leading = false;
      this.onChange(false);
    }
    this.restartLater();
  }

  private restartLater(): void {
    this.timer = setTimeout(() => {
      if (!this.stopped) this.start().catch(() => this.restartLater());
    }, RETRY_MS);
    this.timer.unref();
  }
}

/** The watch behind `watchRefs`; when etcd has compacted the history it needs, a reset. */
class EtcdRefFeed {
  private watcher: Watcher | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ns: Namespace,
    private readonly onEvent: (event: RefEvent) => void,
    private readonly onReset: (revision: number) => void,
    private readonly revision: () => Promise<number>,
  ) {}

  async open(afterRevision: number | undefined): Promise<void> {
    const builder = this.ns.watch().prefix('refs/');
    if (afterRevision !== undefined) builder.startRevision(String(afterRevision + 1));
    const watcher = builder.watcher();
    this.watcher = watcher;
    let connected = false;
    watcher.on('data', (res) => {
      if (this.stopped || this.watcher !== watcher) return;
      for (const event of res.events) this.onEvent(toRefEvent(event));
    });
    // After the watch is set up, an error is a cancel: the history is gone.
    watcher.on('error', () => {
      if (connected) this.resume(watcher);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no watch within ${CALL_TIMEOUT_MS} ms`)),
          CALL_TIMEOUT_MS,
        );
        watcher.once('connected', () => {
          connected = true;
          clearTimeout(timer);
          resolve();
        });
        watcher.once('error', (err: Error) => {
          clearTimeout(timer);
          reject(err);
        });
      });
    } catch (err) {
      if (this.watcher === watcher) this.watcher = undefined;
      await watcher.cancel().catch(() => undefined);
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.cancel().catch(() => undefined);
  }

  private resume(watcher: Watcher): void {
    if (this.stopped || this.watcher !== watcher) return;
    this.watcher = undefined;
    void this.reset();
  }

  private async reset(): Promise<void> {
    try {
      const revision = await this.revision();
      if (this.stopped) return;
      this.onReset(revision);
      await this.open(revision);
    } catch {
      if (this.stopped) return;
      this.timer = setTimeout(() => void this.reset(), RETRY_MS);
      this.timer.unref();
    }
  }
}

function toRefEvent(event: IEvent): RefEvent {
  const key = event.kv.key.toString();
  const slash = key.indexOf('/', 'refs/'.length);
  return {
    revision: Number(event.kv.mod_revision),
    namespace: decodeURIComponent(key.slice('refs/'.length, slash)),
    name: key.slice(slash + 1),
    commit: event.type === 'Put' ? commitOf(event.kv) : undefined,
  };
}
