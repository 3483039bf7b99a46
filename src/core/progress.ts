/**
 * Progress is data: the engine emits typed events; the CLI bar, JSON output,
 * metrics and (later) the dashboard subscribe to them.
 */

export type SyncPhase = 'scan' | 'plan' | 'transfer' | 'delete' | 'verify' | 'done';

export interface ProgressEvent {
  phase: SyncPhase;
  /** Entries finished in this phase so far, and the total when known. */
  files: number;
  totalFiles?: number;
  /** Bytes moved so far, and the total when known. */
  bytes: number;
  totalBytes?: number;
  /** What `files` counts: files (the default) or table rows. */
  unit?: 'files' | 'rows';
  /** Bytes per second over the recent window (rows per second for rows). */
  rate: number;
  /** The entry being worked on, when there is one. */
  current?: string;
}

export type ProgressListener = (event: ProgressEvent) => void;

/** Tracks counters and emits throttled events to its listener. */
export class ProgressMeter {
  private phase: SyncPhase = 'scan';
  private files = 0;
  private bytes = 0;
  private totalFiles: number | undefined;
  private totalBytes: number | undefined;
  private lastEmit = 0;
  private readonly window: { t: number; bytes: number }[] = [];
  /** Counting table rows: the rate is rows per second. */
  unit: 'files' | 'rows' = 'files';

  constructor(
    private readonly listener: ProgressListener | undefined,
    private readonly intervalMs = 200,
    private readonly now: () => number = () => performance.now(),
  ) {}

  start(phase: SyncPhase, totals: { files?: number; bytes?: number } = {}): void {
    this.phase = phase;
    this.files = 0;
    this.bytes = 0;
    this.totalFiles = totals.files;
    this.totalBytes = totals.bytes;
    this.window.length = 0;
    this.emit(true);
  }

  add(files: number, bytes: number, current?: string): void {
    this.files += files;
    this.bytes += bytes;
    this.emit(false, current);
  }

  finish(): void {
    this.emit(true);
  }

  private emit(force: boolean, current?: string): void {
    if (!this.listener) return;
    const t = this.now();
    if (!force && t - this.lastEmit < this.intervalMs) return;
    this.lastEmit = t;
    const amount = this.unit === 'rows' ? this.files : this.bytes;
    this.window.push({ t, bytes: amount });
    while (this.window.length > 1 && t - this.window[0]!.t > 5_000) this.window.shift();
    const first = this.window[0]!;
    const seconds = (t - first.t) / 1000;
    const rate = seconds > 0 ? (amount - first.bytes) / seconds : 0;
    this.listener({
      phase: this.phase,
      files: this.files,
      bytes: this.bytes,
      rate,
      ...(this.unit === 'rows' ? { unit: 'rows' as const } : {}),
      ...(this.totalFiles === undefined ? {} : { totalFiles: this.totalFiles }),
      ...(this.totalBytes === undefined ? {} : { totalBytes: this.totalBytes }),
      ...(current === undefined ? {} : { current }),
    });
  }
}
