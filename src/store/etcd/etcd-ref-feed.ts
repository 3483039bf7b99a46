import type { IEvent, Namespace, Watcher } from 'etcd3';
import type { RefEvent } from '../catalog.js';
import { CALL_TIMEOUT_MS, RETRY_MS } from './etcd-client.js';
import { commitOf } from './etcd-keys.js';

/** The watch behind `watchRefs`; when etcd has compacted the history it needs, a reset. */
export class EtcdRefFeed {
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
