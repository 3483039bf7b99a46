// Part 2 of the cluster case, commit rate: raw etcd puts (etcd3 client) against commits of one
// new small file each to node 1 of a 3-node cluster, sequential and with concurrent workers.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { Agent } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  call,
  catalogFor,
  etcdClient,
  nodeLog,
  startStore,
  tail,
  teardown,
} from './cluster-nodes.mjs';
import { storeAddress } from '../dist/core/hash.js';
import { flush, removeTree } from './measure.mjs';
import { errorGist } from './report.mjs';

/** Commit-rate phases, in run order (rotated per run). */
export const RATE_PHASES = {
  etcdSeq: 'etcd-put-seq',
  etcdConc: 'etcd-put-conc',
  tbSeq: 'tongbu-commit-seq',
  tbConc: 'tongbu-commit-conc',
  tbSame: 'tongbu-commit-conc-same-ns',
};

/** p50, p99 and max of a list of latencies (ms); null when empty. */
function percentiles(list) {
  if (!list.length) return null;
  const v = [...list].sort((a, b) => a - b);
  const at = (q) => v[Math.min(v.length - 1, Math.floor(q * v.length))];
  return { p50: at(0.5), p99: at(0.99), max: v[v.length - 1] };
}

/**
 * Runs `workers` loops of `op(worker, seq)` until `sec` have passed (in-flight ops finish);
 * after one untimed op per worker (connections, namespaces). Counts ok ops and errors.
 */
async function rateLoop(workers, sec, op) {
  const lat = [];
  let ops = 0;
  let errors = 0;
  let firstError = null;
  const warmErrors = [];
  await Promise.all(
    Array.from({ length: workers }, (_, w) => op(w, 0).catch((e) => warmErrors.push(e.message))),
  );
  if (warmErrors.length)
    return {
      ok: false,
      ops: 0,
      errors: warmErrors.length,
      firstError: `warm-up: ${warmErrors[0]}`,
    };
  const t0 = process.hrtime.bigint();
  const end = Date.now() + sec * 1000;
  await Promise.all(
    Array.from({ length: workers }, async (_, w) => {
      for (let seq = 1; Date.now() < end; seq++) {
        const s = process.hrtime.bigint();
        try {
          await op(w, seq);
          ops++;
          lat.push(Number(process.hrtime.bigint() - s) / 1e6);
        } catch (e) {
          errors++;
          firstError ??= e.message;
          if (errors > 50 && ops === 0) return;
        }
      }
    }),
  );
  const elapsedSec = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    ok: ops > 0,
    ops,
    errors,
    firstError,
    elapsedSec,
    rate: ops / elapsedSec,
    latencyMs: percentiles(lat),
  };
}

async function etcdPhase(client, workers, p, tag) {
  const prefix = `/tongbu-bench-${process.pid}-${tag}-${randomBytes(3).toString('hex')}/`;
  const value = 'v'.repeat(p.etcdValueBytes);
  try {
    return {
      prefix,
      ...(await rateLoop(workers, p.rateSec, (w) => client.put(`${prefix}w${w}`).value(value))),
    };
  } finally {
    await client.delete().prefix(prefix);
  }
}

/** One commit of one new small file: upload its chunk, then commit it onto the worker's base. */
function committer(store, agent, p) {
  const node = store.nodes[0];
  const headers = { 'x-tongbu-replication': 'quorum' };
  return async ({ ns, key, state, timed }) => {
    const bytes = randomBytes(p.commitFileBytes);
    const hash = storeAddress(bytes);
    const digest = Buffer.from(hash.slice(hash.indexOf(':') + 1), 'hex');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(bytes.length);
    const t0 = performance.now();
    const up = await call(node.port, 'POST', '/v1/chunks', {
      token: store.token,
      agent,
      headers: { ...headers, 'x-tongbu-namespace': ns },
      body: Buffer.concat([digest, len, bytes]),
    });
    if (up.status !== 200) throw new Error(`POST /v1/chunks: ${up.status} ${tail(up.text, 300)}`);
    const t1 = performance.now();
    const entry = {
      kind: 'file',
      size: bytes.length,
      mtimeMs: Date.now(),
      mode: 0o644,
      hash,
      parts: 1,
      data: hash,
    };
    const r = await call(node.port, 'POST', `/v1/ns/${encodeURIComponent(ns)}/commits`, {
      token: store.token,
      agent,
      headers: { ...headers, 'x-tongbu-namespace': ns },
      body: { base: state.base, changes: [{ key, entry }], message: 'bench' },
    });
    if (r.status !== 200) throw new Error(`POST commits: ${r.status} ${tail(r.text, 300)}`);
    state.base = r.json.commit;
    if (!timed) return;
    state.uploadMs.push(t1 - t0);
    state.commitMs.push(performance.now() - t1);
    if (r.json.merged) state.merged++;
    const rep = r.json.replication;
    if (rep && (state.fewest == null || rep.replicas < state.fewest.replicas)) state.fewest = rep;
  };
}

async function tongbuPhase(store, workers, p, nsOf) {
  const agent = new Agent({ keepAlive: true, maxSockets: workers });
  try {
    const commit = committer(store, agent, p);
    const states = Array.from({ length: workers }, () => ({
      base: null,
      merged: 0,
      fewest: null,
      uploadMs: [],
      commitMs: [],
    }));
    const r = await rateLoop(workers, p.rateSec, (w, seq) =>
      commit({ ns: nsOf(w), key: `w${w}/f${seq}.bin`, state: states[w], timed: seq > 0 }),
    );
    const fewest = states.map((s) => s.fewest).filter(Boolean);
    return {
      ...r,
      merged: states.reduce((n, s) => n + s.merged, 0),
      // The two requests of an op: the chunk upload, then the commit.
      uploadMs: percentiles(states.flatMap((s) => s.uploadMs)),
      commitMs: percentiles(states.flatMap((s) => s.commitMs)),
      replication: fewest.length
        ? fewest.reduce((a, b) => (b.replicas < a.replicas ? b : a))
        : null,
    };
  } finally {
    agent.destroy();
  }
}

export async function commitRun(ctx, opts, i, catalogKind) {
  const p = ctx.params;
  const root = join(ctx.caseRoot, 'commits');
  removeTree(root);
  mkdirSync(root, { recursive: true });
  const catalog = catalogFor(catalogKind, root, `cr${i}`);
  const rec = { run: i, catalog: catalog.url, phases: {}, error: null };
  const tag = (ph) => `[cluster] commits run ${i}/${opts.runs} ${ph}`;
  let store = null;
  let etcd = null;
  try {
    etcd = await etcdClient();
    store = await startStore(ctx, root, catalog.url, join(ctx.logDir, `commits-${i}`));
    rec.serverArgv = store.nodes.map((n) => n.argv);
    if (store.error) {
      // The raw etcd phases still run: they need no node.
      rec.error = `nodes did not start: ${store.error}`;
      ctx.log(`${tag('')}nodes did not start: ${errorGist({ stderrTail: store.error })}`);
    }
    const names = Object.keys(RATE_PHASES);
    const order = names
      .slice((i - 1) % names.length)
      .concat(names.slice(0, (i - 1) % names.length));
    const c = p.concurrency;
    const run = {
      etcdSeq: () => etcdPhase(etcd, 1, p, `r${i}s`),
      etcdConc: () => etcdPhase(etcd, c, p, `r${i}c`),
      tbSeq: () => tongbuPhase(store, 1, p, () => `seq-r${i}`),
      tbConc: () => tongbuPhase(store, c, p, (w) => `own-r${i}-w${w}`),
      tbSame: () => tongbuPhase(store, c, p, () => `same-r${i}`),
    };
    for (const k of order) {
      const isTongbu = k.startsWith('tb');
      if (isTongbu && rec.error) {
        rec.phases[k] = { ok: false, ops: 0, errors: 0, firstError: rec.error };
        continue;
      }
      flush();
      const r = { ...(await run[k]()), load1: loadavg()[0] };
      const dead = isTongbu && store.nodes.find((n) => n.exit);
      if (dead) {
        r.ok = false;
        r.firstError = `node n${store.nodes.indexOf(dead) + 1} exited: ${nodeLog(dead)}`;
        rec.error = r.firstError;
      }
      rec.phases[k] = r;
      ctx.log(`${tag(RATE_PHASES[k])}: ${describeRate(r)}`);
      if (r.firstError) {
        ctx.log(`${tag(RATE_PHASES[k])}   first error: ${r.firstError.split('\n')[0]}`);
      }
    }
  } catch (e) {
    rec.error = e.message;
    ctx.log(`${tag('')}FAILED: ${e.message.split('\n')[0]}`);
  } finally {
    etcd?.close();
    rec.stops = await teardown(store, root, catalog, ctx.log);
  }
  return rec;
}

function describeRate(r) {
  if (!r.ok) return `FAILED (${r.ops ?? 0} ok, ${r.errors ?? 0} errors)`;
  const parts = [`${r.rate.toFixed(0)}/s`, `${r.ops} ops in ${r.elapsedSec.toFixed(2)} s`];
  if (r.latencyMs?.p50 != null)
    parts.push(`p50 ${r.latencyMs.p50.toFixed(1)} ms, p99 ${r.latencyMs.p99.toFixed(1)} ms`);
  if (r.commitMs) {
    parts.push(`p50 upload ${r.uploadMs.p50.toFixed(1)} + commit ${r.commitMs.p50.toFixed(1)} ms`);
  }
  if (r.errors) parts.push(`${r.errors} errors`);
  if (r.merged) parts.push(`${r.merged} merged`);
  if (r.replication)
    parts.push(`${r.replication.mode} >= ${r.replication.replicas} of ${r.replication.wanted}`);
  return parts.join(', ');
}
