import type { Lease, Namespace } from 'etcd3';
import { RETRY_MS } from './etcd-client.js';

/**
 * One campaign for `key`: whoever creates it (on its own lease) leads until
 * the key goes (resign, or the lease lapses); the others watch for that.
 */
export class Candidate {
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
