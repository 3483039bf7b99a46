/**
 * A small pool of fs-worker threads. Requests queue; each worker takes one
 * at a time. A worker starts when a request finds none idle, never before.
 * Setting the shared abort flag stops work inside a file.
 */
import { Worker } from 'node:worker_threads';
import { TongbuError } from '../../core/errors.js';
import type { HashAlgorithm } from '../../core/hash.js';
import { TEMP_TAG } from './fs-entry.js';
import type {
  CopyBatch,
  CopyResults,
  DiffCounts,
  DiffTask,
  HashResult,
  RenameResult,
  RenameTask,
  WorkerReply,
  WalkBatch,
  WorkerRequest,
} from './fs-worker-protocol.js';

type Job =
  | ({ type: 'copy'; bwlimit: number } & CopyBatch)
  | { type: 'hash'; paths: string[]; algorithm: HashAlgorithm }
  | ({ type: 'rename' } & RenameTask)
  | { type: 'walk'; root: string }
  | ({ type: 'diff' } & DiffTask);

type Result = CopyResults | HashResult | RenameResult | DiffCounts;

interface Pending {
  request: WorkerRequest;
  onProgress: ((reply: WorkerReply) => void) | undefined;
  resolve: (results: Result[]) => void;
  reject: (err: Error) => void;
}

/**
 * A started worker and the request it is on. The request sits here rather
 * than in a Map set and cleared for every request: V8 leaves the tables
 * such a Map outgrows in the old generation, stale entries and all, and
 * until the next full collection those kept each request's data alive
 * through young-generation collections, into the old generation (tens of
 * MB over a copy of 200,000 small files).
 */
interface Slot {
  readonly worker: Worker;
  pending: Pending | undefined;
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
  private readonly slots: Slot[] = [];
  private readonly idle: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(readonly size: number) {}

  async copy(
    batch: CopyBatch,
    bwlimit: number,
    onBytes?: (bytes: number) => void,
  ): Promise<CopyResults> {
    const onProgress = onBytes && ((r: WorkerReply) => r.type !== 'walk' && onBytes(r.bytes));
    const [results] = await this.submit({ type: 'copy', ...batch, bwlimit }, onProgress);
    return results as CopyResults;
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

  /** Renames temp files of copies into place (already made durable by the caller). */
  rename(task: RenameTask): Promise<RenameResult[]> {
    return this.submit({ type: 'rename', ...task }, undefined) as Promise<RenameResult[]>;
  }

  /**
   * Ends the idle workers; later requests start fresh ones. For after a
   * long walk: a worker keeps the heap a walk grew until its next full
   * collection, which the copying that follows may never bring.
   */
  async retireIdle(): Promise<void> {
    const idle = this.idle.splice(0);
    for (const slot of idle) this.slots.splice(this.slots.indexOf(slot), 1);
    await Promise.all(idle.map((slot) => slot.worker.terminate()));
  }

  /** Asks every worker to stop inside the file it is on. */
  abortAll(): void {
    Atomics.store(this.abortFlag, 0, 1);
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new TongbuError('ABORTED', 'worker pool closed');
    for (const p of this.queue.splice(0)) p.reject(err);
    const workers = this.slots.splice(0).map((slot) => slot.worker);
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
      const slot = this.idle.pop() ?? this.spawn();
      if (!slot) return;
      const pending = this.queue.shift()!;
      slot.pending = pending;
      slot.worker.postMessage(pending.request);
    }
  }

  private spawn(): Slot | undefined {
    if (this.slots.length >= this.size) return undefined;
    const worker = new Worker(WORKER_URL, {
      workerData: { abort: this.abort, throttle: this.throttle, umask: UMASK, tempTag: TEMP_TAG },
      // Workers hold a block buffer and little else: a small young
      // generation (2 MB is V8's least) keeps each one's memory to a few MB.
      resourceLimits: { maxYoungGenerationSizeMb: 2 },
    });
    const slot: Slot = { worker, pending: undefined };
    this.slots.push(slot);
    worker.on('message', (reply: WorkerReply) => {
      const { pending } = slot;
      if (!pending) return;
      pending.onProgress?.(reply);
      if (reply.type === 'done') {
        slot.pending = undefined;
        this.idle.push(slot);
        pending.resolve(reply.results);
        this.pump();
      }
    });
    worker.on('error', (err) => {
      const { pending } = slot;
      slot.pending = undefined;
      for (const list of [this.slots, this.idle]) {
        const at = list.indexOf(slot);
        if (at >= 0) list.splice(at, 1);
      }
      pending?.reject(
        new TongbuError('INTERNAL', `fs worker failed: ${err.message}`, { cause: err }),
      );
      this.pump();
    });
    return slot;
  }
}
