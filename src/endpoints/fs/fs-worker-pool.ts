/**
 * A small pool of fs-worker threads. Requests queue; each worker takes one
 * at a time. Setting the shared abort flag stops work inside a file.
 */
import { Worker } from 'node:worker_threads';
import { TongbuError } from '../../core/errors.js';
import type {
  CopyJob,
  CopyResult,
  HashResult,
  WorkerReply,
  WorkerRequest,
} from './fs-worker-protocol.js';

type Job = { type: 'copy'; jobs: CopyJob[]; bwlimit: number } | { type: 'hash'; paths: string[] };

interface Pending {
  request: WorkerRequest;
  onBytes: ((bytes: number) => void) | undefined;
  resolve: (results: (CopyResult | HashResult)[]) => void;
  reject: (err: Error) => void;
}

const WORKER_URL = new URL('./fs-worker.js', import.meta.url);

export class FsWorkerPool {
  private readonly abort = new SharedArrayBuffer(4);
  private readonly abortFlag = new Int32Array(this.abort);
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Pending[] = [];
  private started = 0;
  private nextId = 1;
  private closed = false;

  constructor(readonly size: number) {}

  copy(jobs: CopyJob[], bwlimit: number, onBytes?: (bytes: number) => void): Promise<CopyResult[]> {
    return this.submit({ type: 'copy', jobs, bwlimit }, onBytes) as Promise<CopyResult[]>;
  }

  hash(paths: string[]): Promise<HashResult[]> {
    return this.submit({ type: 'hash', paths }, undefined);
  }

  /** Asks every worker to stop inside the file it is on. */
  abortAll(): void {
    Atomics.store(this.abortFlag, 0, 1);
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new TongbuError('ABORTED', 'worker pool closed');
    for (const p of this.queue.splice(0)) p.reject(err);
    const workers = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private submit(job: Job, onBytes: ((bytes: number) => void) | undefined) {
    if (this.closed) return Promise.reject(new TongbuError('ABORTED', 'worker pool closed'));
    return new Promise<(CopyResult | HashResult)[]>((resolve, reject) => {
      const request: WorkerRequest = { ...job, id: this.nextId++ };
      this.queue.push({ request, onBytes, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const worker = this.idle.pop() ?? this.spawn();
      if (!worker) return;
      const pending = this.queue.shift()!;
      this.busy.set(worker, pending);
      worker.postMessage(pending.request);
    }
  }

  private spawn(): Worker | undefined {
    if (this.started >= this.size) return undefined;
    this.started++;
    const worker = new Worker(WORKER_URL, { workerData: { abort: this.abort } });
    worker.on('message', (reply: WorkerReply) => {
      const pending = this.busy.get(worker);
      if (!pending) return;
      pending.onBytes?.(reply.bytes);
      if (reply.type === 'done') {
        this.busy.delete(worker);
        this.idle.push(worker);
        pending.resolve(reply.results);
        this.pump();
      }
    });
    worker.on('error', (err) => {
      const pending = this.busy.get(worker);
      this.busy.delete(worker);
      this.started--;
      pending?.reject(
        new TongbuError('INTERNAL', `fs worker failed: ${err.message}`, { cause: err }),
      );
      this.pump();
    });
    return worker;
  }
}
