/**
 * A small pool of fs-worker threads. Requests queue; each worker takes one
 * at a time. A worker starts when a request finds none idle, never before.
 * Setting the shared abort flag stops work inside a file.
 */
import { Worker } from 'node:worker_threads';
import { TongbuError } from '../../core/errors.js';
import type { HashAlgorithm } from '../../core/hash.js';
import type {
  CopyJob,
  CopyResult,
  DiffCounts,
  DiffTask,
  HashResult,
  RenameResult,
  WorkerReply,
  WalkBatch,
  WorkerRequest,
} from './fs-worker-protocol.js';

type Job =
  | { type: 'copy'; jobs: CopyJob[]; bwlimit: number }
  | { type: 'hash'; paths: string[]; algorithm: HashAlgorithm }
  | { type: 'rename'; pairs: [string, string][] }
  | { type: 'walk'; root: string }
  | ({ type: 'diff' } & DiffTask);

type Result = CopyResult | HashResult | RenameResult | DiffCounts;

interface Pending {
  request: WorkerRequest;
  onProgress: ((reply: WorkerReply) => void) | undefined;
  resolve: (results: Result[]) => void;
  reject: (err: Error) => void;
}

const WORKER_URL = new URL('./fs-worker.js', import.meta.url);
/** Workers cannot read the umask; it is read once here, without changing it. */
const UMASK = readUmask();

function readUmask(): number {
  const mask = process.umask(0);
  process.umask(mask);
  return mask;
}

export class FsWorkerPool {
  private readonly abort = new SharedArrayBuffer(4);
  private readonly abortFlag = new Int32Array(this.abort);
  /** Bytes sent under --bwlimit by all workers, and since when. */
  private readonly throttle = new SharedArrayBuffer(16);
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Pending[] = [];
  private started = 0;
  private nextId = 1;
  private closed = false;

  constructor(readonly size: number) {}

  copy(jobs: CopyJob[], bwlimit: number, onBytes?: (bytes: number) => void): Promise<CopyResult[]> {
    const onProgress = onBytes && ((r: WorkerReply) => r.type !== 'walk' && onBytes(r.bytes));
    return this.submit({ type: 'copy', jobs, bwlimit }, onProgress) as Promise<CopyResult[]>;
  }

  hash(paths: string[], algorithm: HashAlgorithm): Promise<HashResult[]> {
    return this.submit({ type: 'hash', paths, algorithm }, undefined) as Promise<HashResult[]>;
  }

  /** Walks a tree in a worker; batches of entries arrive through `onBatch`. */
  async walk(root: string, onBatch: (batch: WalkBatch) => void): Promise<void> {
    await this.submit({ type: 'walk', root }, (r) => r.type === 'walk' && onBatch(r));
  }

  /** A paired walk of two trees; batches of differing entries arrive through `onBatch`. */
  async diff(task: DiffTask, onBatch: (batch: WalkBatch) => void): Promise<DiffCounts> {
    const [counts] = await this.submit(
      { type: 'diff', ...task },
      (r) => r.type === 'walk' && onBatch(r),
    );
    return counts as DiffCounts;
  }

  /** Renames temp files into place (already made durable by the caller). */
  rename(pairs: [string, string][]): Promise<RenameResult[]> {
    return this.submit({ type: 'rename', pairs }, undefined) as Promise<RenameResult[]>;
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

  private submit(job: Job, onProgress: ((reply: WorkerReply) => void) | undefined) {
    if (this.closed) return Promise.reject(new TongbuError('ABORTED', 'worker pool closed'));
    return new Promise<Result[]>((resolve, reject) => {
      const request: WorkerRequest = { ...job, id: this.nextId++ };
      this.queue.push({ request, onProgress, resolve, reject });
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
    const worker = new Worker(WORKER_URL, {
      workerData: { abort: this.abort, throttle: this.throttle, umask: UMASK },
      // Workers hold a block buffer and little else: a small young
      // generation keeps each one's memory to a few MB.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    worker.on('message', (reply: WorkerReply) => {
      const pending = this.busy.get(worker);
      if (!pending) return;
      pending.onProgress?.(reply);
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
