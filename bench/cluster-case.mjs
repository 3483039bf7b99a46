// Case cluster: the two acceptance figures of the replicated store (issue: replicated store),
// each as medians over interleaved runs and as a ratio, never as one absolute time.
//
//   throughput  the same dataset (8 incompressible files, 1 GiB; --quick 128 MiB) uploaded with
//               `tongbu sync` into (a) one plain node and (b) a 3-node cluster, R=3,
//               --replication quorum, the client given all three addresses. Fresh data dirs
//               (and a fresh catalog) per run. After each cluster run (untimed): the answer must
//               say >= 2 of 3 replicas, and every node must hold the same objects and bytes
//               once its replication lag is 0 (waited for up to 30 s).
//   commits     only when etcd answers on 127.0.0.1:2379: raw etcd puts (etcd3 client) vs
//               commits of one new small file each (chunk upload + commit over node:http with a
//               keep-alive agent) to node 1 of a 3-node cluster on the etcd catalog. Sequential
//               for ~3 s, and 100 concurrent workers (committers in their own namespaces, and
//               in one shared namespace).
//
// The catalog of the clusters is etcd when etcd answers, else a shared SQLite file
// (--catalog etcd|sqlite forces one). Nodes are stopped by PID (SIGTERM, SIGKILL after 10 s),//
// Modules: cluster-nodes.mjs (nodes, catalogs), cluster-throughput.mjs (dataset, uploads),
// cluster-commits.mjs (commit and etcd put loops), cluster-report.mjs (summary, tables).
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { commitRun } from './cluster-commits.mjs';
import {
  DEFAULT_TONGBU_BIN,
  ETCD_HOST,
  NODE_ARGS,
  NODES,
  NS,
  etcdAnswers,
  killLive,
} from './cluster-nodes.mjs';
import { clusterRatios, summarizeCluster } from './cluster-report.mjs';
import { ensureDataset, throughputRun } from './cluster-throughput.mjs';
import { removeTree, runMeasured } from './measure.mjs';
import { splitWords } from './tools.mjs';

export { RATE_PHASES } from './cluster-commits.mjs';
export { TARGETS, formatClusterReport } from './cluster-report.mjs';

export const CLUSTER_CASE = 'cluster';
export const CATALOGS = ['auto', 'etcd', 'sqlite'];
const MiB = 1024 * 1024;

export function clusterParams(quick) {
  return {
    files: 8,
    fileSize: quick ? 16 * MiB : 128 * MiB,
    rateSec: 3,
    concurrency: 100,
    commitFileBytes: 300,
    etcdValueBytes: 100,
  };
}
/** Runs the cluster case. ctx: { work, srcRoot, tmp, repo, log, tongbuBin }. */
export async function runClusterCase(caseName, opts, ctx0) {
  const params = clusterParams(opts.quick);
  const caseRoot = join(ctx0.work, 'cluster');
  const logDir = join(caseRoot, 'logs');
  const ctx = {
    ...ctx0,
    params,
    caseRoot,
    logDir,
    bin: splitWords(ctx0.tongbuBin ?? DEFAULT_TONGBU_BIN),
    measure: (argv) =>
      runMeasured(argv, { cwd: ctx0.repo, tmpDir: ctx0.tmp, timeoutSec: opts.timeoutSec }),
  };
  const log = ctx.log;
  const etcdVersion = await etcdAnswers();
  const asked = opts.catalog ?? 'auto';
  const c = {
    kind: 'cluster',
    params,
    quick: opts.quick,
    catalog: {
      asked,
      used: null,
      etcd: etcdVersion ? { host: ETCD_HOST, version: etcdVersion } : null,
    },
    nodeArgs: NODE_ARGS,
    commands: {},
    throughput: { single: [], cluster: [] },
    commits: [],
    error: null,
  };
  const onSignal = (sig) => {
    killLive();
    log(`[cluster] ${sig}: nodes killed; data under ${caseRoot}`);
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (!opts.tools.includes('tongbu')) throw new Error('tongbu not in --tools: nothing to run');
    if (asked === 'etcd' && !etcdVersion)
      throw new Error(`--catalog etcd: etcd does not answer on ${ETCD_HOST}`);
    c.catalog.used = asked === 'auto' ? (etcdVersion ? 'etcd' : 'sqlite') : asked;
    removeTree(caseRoot);
    mkdirSync(logDir, { recursive: true });
    const src = ensureDataset(ctx.srcRoot, params, opts.seed, log);
    const dataset = { files: params.files, bytes: params.files * params.fileSize };
    c.dataset = { dir: src, ...dataset };
    const cat =
      c.catalog.used === 'etcd'
        ? `etcd://${ETCD_HOST}/PREFIX`
        : 'sqlite:DIR/cluster/cluster/catalog.db';
    c.commands = {
      single: {
        serve: [...ctx.bin, 'serve', '--data', 'DATA', '--listen', '127.0.0.1:PORT'],
        upload: [
          ...ctx.bin,
          'sync',
          src,
          `tongbu://127.0.0.1:PORT/${NS}`,
          '--json',
          '--state',
          'STATE',
        ],
      },
      cluster: {
        serve: [
          ...ctx.bin,
          'serve',
          '--data',
          'DATA_i',
          '--listen',
          '127.0.0.1:PORT_i',
          '--catalog',
          cat,
          '--node-id',
          'n_i',
          '--replicas',
          '3',
          '--replication',
          'quorum',
          ...NODE_ARGS,
        ],
        upload: [
          ...ctx.bin,
          'sync',
          src,
          `tongbu://127.0.0.1:PORT_1,127.0.0.1:PORT_2,127.0.0.1:PORT_3/${NS}`,
          '--json',
          '--state',
          'STATE',
          '--replication',
          'quorum',
        ],
        env: 'TONGBU_TOKEN=$(cat DATA_1/admin.token)',
        check:
          'GET /v1/internal/status on each node (admin token) until lag 0 and objects/bytes equal',
      },
      commit: [
        'POST /v1/chunks  [32-byte blake3][u32 BE length][bytes]  (x-tongbu-replication: quorum)',
        'POST /v1/ns/NS/commits  {base, changes: [{key, entry: {kind: "file", size, mtimeMs, mode, hash, parts: 1, data: hash}}]}',
      ],
    };
    log(
      `== ${caseName}: ${params.files} x ${params.fileSize / MiB} MiB, single node vs ${NODES} nodes ` +
        `R=3 quorum; catalog ${c.catalog.used}${etcdVersion ? ` (etcd ${etcdVersion})` : ' (etcd not answering: no commit-rate part)'}`,
    );
    const variants = ['single', 'cluster'];
    for (let i = 1; i <= opts.runs; i++) {
      const k = (i - 1) % variants.length;
      for (const v of variants.slice(k).concat(variants.slice(0, k))) {
        c.throughput[v].push(await throughputRun(ctx, opts, v, i, src, dataset, c.catalog.used));
      }
    }
    if (etcdVersion) {
      if (c.catalog.used !== 'etcd') {
        log(
          '[cluster] commit rate on the SQLite catalog (forced): the ratios are not the issue figure',
        );
      }
      for (let i = 1; i <= opts.runs; i++)
        c.commits.push(await commitRun(ctx, opts, i, c.catalog.used));
    }
  } catch (e) {
    c.error = e.message;
    log(`[cluster] FAILED: ${e.message}`);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    killLive();
    // Data dirs are gone already (per run); keep the node logs only when something failed.
    if (existsSync(caseRoot)) {
      for (const f of readdirSync(caseRoot)) if (f !== 'logs') removeTree(join(caseRoot, f));
    }
  }
  c.summary = summarizeCluster(c);
  c.ratios = clusterRatios(c);
  const failed =
    c.error ||
    Object.values(c.summary.throughput).some((s) => s.failedRuns) ||
    Object.values(c.summary.commits).some((s) => s.failedRuns);
  if (!failed) removeTree(caseRoot);
  else log(`[cluster] node logs kept in ${logDir}`);
  return c;
}
