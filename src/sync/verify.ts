/**
 * `tongbu verify`: proves two endpoints hold the same data, by content. It
 * lists both sides, compares kinds, sizes and link targets, then hashes the
 * files present on both sides and lists what is missing, extra or different.
 */
import type { Key } from '../core/key.js';
import { ProgressMeter, type ProgressListener } from '../core/progress.js';
import { syncHashAlgorithm, type Endpoint, type Entry } from '../endpoints/endpoint.js';
import { errorSubject, type TongbuError } from '../core/errors.js';
import { createFilter } from './filter.js';
import { listAll } from './scan.js';

export interface VerifyReport {
  source: string;
  destination: string;
  equal: boolean;
  compared: number;
  bytesHashed: number;
  missing: Key[];
  extra: Key[];
  different: { key: Key; reason: string }[];
  errors: { key: string; code: string; message: string }[];
  durationMs: number;
}

export interface VerifyRequest {
  readonly source: Endpoint;
  readonly destination: Endpoint;
  readonly include?: readonly string[];
  readonly exclude?: readonly string[];
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressListener;
}

const HASH_BATCH = 256;

export async function runVerify(request: VerifyRequest): Promise<VerifyReport> {
  const started = performance.now();
  const { source, destination } = request;
  const report: VerifyReport = {
    source: source.url,
    destination: destination.url,
    equal: false,
    compared: 0,
    bytesHashed: 0,
    missing: [],
    extra: [],
    different: [],
    errors: [],
    durationMs: 0,
  };
  const problem = (e: TongbuError): void => {
    report.errors.push({ key: errorSubject(e), code: e.code, message: e.message });
  };
  await source.open({ create: false });
  await destination.open({ create: false });
  const meter = new ProgressMeter(request.onProgress);
  meter.start('scan');
  const filter = createFilter(request.include ?? [], request.exclude ?? []);
  const [a, b] = await Promise.all([
    listAll(source, meter, request.signal, problem),
    listAll(destination, meter, request.signal, problem),
  ]);

  const toHash: Entry[] = [];
  for (const [key, s] of a) {
    if (!filter(key, s.kind)) continue;
    const d = b.get(key);
    if (d === undefined) report.missing.push(key);
    else if (d.kind !== s.kind) report.different.push({ key, reason: `${s.kind} vs ${d.kind}` });
    else if (s.kind === 'symlink' && s.target !== d.target) {
      report.different.push({ key, reason: 'link targets differ' });
    } else if (s.kind === 'file' && s.size !== d.size) {
      report.different.push({ key, reason: `size ${s.size} vs ${d.size}` });
    } else if (s.kind === 'file') toHash.push(s);
    else report.compared++;
  }
  for (const [key, d] of b) if (filter(key, d.kind) && !a.has(key)) report.extra.push(key);

  meter.start('verify', { files: toHash.length, bytes: toHash.reduce((n, e) => n + e.size, 0) });
  const hashOptions = {
    algorithm: syncHashAlgorithm(source.capabilities, destination.capabilities),
  };
  const batches: Entry[][] = [];
  for (let i = 0; i < toHash.length; i += HASH_BATCH) batches.push(toHash.slice(i, i + HASH_BATCH));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      request.signal?.throwIfAborted();
      const batch = batches[next++]!;
      const keys = batch.map((e) => e.key);
      try {
        const [ha, hb] = await Promise.all([
          source.hash(keys, hashOptions),
          destination.hash(keys, hashOptions),
        ]);
        batch.forEach((e, i) => {
          report.compared++;
          if (ha[i] !== hb[i]) report.different.push({ key: e.key, reason: 'content differs' });
        });
      } catch (err) {
        problem(err as TongbuError);
      }
      const bytes = batch.reduce((n, e) => n + e.size, 0);
      report.bytesHashed += 2 * bytes;
      meter.add(batch.length, bytes);
    }
  };
  await Promise.all([worker(), worker()]);
  meter.finish();
  for (const list of [report.missing, report.extra]) list.sort();
  report.different.sort((x, y) => (x.key < y.key ? -1 : 1));
  report.equal =
    report.missing.length + report.extra.length + report.different.length + report.errors.length ===
    0;
  report.durationMs = Math.round(performance.now() - started);
  return report;
}
