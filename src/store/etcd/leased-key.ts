import type { Lease, Namespace } from 'etcd3';
import { RETRY_MS } from './etcd-client.js';

/** A key held by a lease of its own, put again on a new lease when etcd lets one lapse. */
export class LeasedKey {
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
