#!/usr/bin/env node
// Benchmark harness: tongbu vs rsync vs rclone (and cp as a reference) on AI-like workloads.
// See bench/README.md. Plain Node ESM, no dependencies.
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  HAVE_TIME,
  compareContent,
  compareTree,
  flush,
  removeTree,
  runMeasured,
  treeSummary,
  warm,
} from './measure.mjs';
import { errorGist, formatReport, ratios, summarizeCase } from './report.mjs';
import {
  ALL_TOOLS,
  CASES,
  DEFAULT_TONGBU,
  tongbuTemplate,
  toolArgv,
  toolsForCase,
  toolVersions,
} from './tools.mjs';
import { ensureWorkload, workloadParams } from './workloads.mjs';
import {
  DEFAULT_TONGBU_BIN,
  ensureRestic,
  formatStoreReport,
  runStoreCase,
} from './store-case.mjs';
import {
  DEFAULT_MYSQL_URL,
  DEFAULT_PG_URL,
  TABLE_CASE,
  TABLE_TOOLS,
  ensurePgloader,
  formatTableReport,
  runTableCase,
} from './table-case.mjs';
import { CATALOGS, CLUSTER_CASE, formatClusterReport, runClusterCase } from './cluster-case.mjs';

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
/** The file cases of tools.mjs, then the table case and the cluster case (bench/*-case.mjs). */
const CASE_NAMES = [...Object.keys(CASES), TABLE_CASE, CLUSTER_CASE];
const TOOL_NAMES = [...ALL_TOOLS, ...TABLE_TOOLS.filter((t) => !ALL_TOOLS.includes(t))];
const HELP = `usage: node bench/run.mjs [options]
  --cases LIST       comma-separated, default all: ${CASE_NAMES.join(',')}
  --tools LIST       comma-separated, default all: tongbu,rsync,rclone,cp,restic,pgloader
                     (rsync also runs rsync-delta = rsync --no-whole-file in w2-w3; cp only in *-full;
                     in store-w2-w3 the tools are tongbu, rsync (= rsync-daemon) and restic;
                     in table, pgloader and tongbu: without tongbu only pgloader's full copies run)
  --runs N           timed runs per case and tool (default 3)
  --dir DIR          work dir for workloads, destinations, state, results (default .bench/)
  --quick            scaled-down workloads for a smoke test (kept in DIR/quick/)
  --json FILE        also write the full results to FILE
  --tongbu-cmd CMD   tongbu command template (default "${DEFAULT_TONGBU}");
                     without {src}, "SRC DST" is appended ("SRC/ DST/" for an rsync command)
  --tongbu-bin CMD   the tongbu CLI for serve and sync in store-w2-w3, and for sync and verify
                     in table (default "${DEFAULT_TONGBU_BIN}"; --tongbu-cmd does not apply there)
  --pg-url URL       table: PostgreSQL database, no ?table= (default ${DEFAULT_PG_URL})
  --mysql-url URL    table: MariaDB/MySQL database, no ?table= (default ${DEFAULT_MYSQL_URL})
  --table-rows N     table: rows of the SQLite source (default 1000000; --quick 100000)
  --verify-rows N    table: rows of the verify tables (default 10000000; --quick 1000000)
  --catalog KIND     cluster: catalog of the 3-node clusters: auto (default: etcd when it answers
                     on 127.0.0.1:2379, else sqlite), etcd or sqlite
  --verify MODE      after each timed run: tree (paths, sizes, mtimes; default), content, none
                     (w2-w3 and store-w2-w3 always compare content unless none;
                     table compares row aggregates with the source unless none)
  --timeout SEC      kill a tool run after SEC seconds (default 3600)
  --seed S           workload seed (default 1)`;

function parseCli() {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string' },
      tools: { type: 'string' },
      runs: { type: 'string', default: '3' },
      dir: { type: 'string' },
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      'tongbu-cmd': { type: 'string' },
      'tongbu-bin': { type: 'string' },
      'pg-url': { type: 'string' },
      'mysql-url': { type: 'string' },
      'table-rows': { type: 'string' },
      'verify-rows': { type: 'string' },
      catalog: { type: 'string', default: 'auto' },
      verify: { type: 'string', default: 'tree' },
      timeout: { type: 'string', default: '3600' },
      seed: { type: 'string', default: '1' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    process.exit(0);
  }
  const list = (s, all, what) => {
    const xs = s
      ? s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
      : all;
    const bad = xs.filter((x) => !all.includes(x));
    if (bad.length)
      throw new Error(`unknown ${what}: ${bad.join(', ')} (known: ${all.join(', ')})`);
    return xs;
  };
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  if (!['tree', 'content', 'none'].includes(values.verify)) throw new Error('bad --verify');
  if (!CATALOGS.includes(values.catalog))
    throw new Error(`--catalog must be one of ${CATALOGS.join(', ')}`);
  const count = (s, what) => {
    if (s == null) return null;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${what} must be a positive integer`);
    return n;
  };
  return {
    cases: list(values.cases, CASE_NAMES, 'case'),
    tools: list(values.tools, TOOL_NAMES, 'tool'),
    runs,
    dir: resolve(values.dir ?? join(REPO, '.bench')),
    quick: values.quick,
    json: values.json ? resolve(values.json) : null,
    tongbuCmd: values['tongbu-cmd'] ?? null,
    tongbuBin: values['tongbu-bin'] ?? null,
    pgUrl: values['pg-url'] ?? null,
    mysqlUrl: values['mysql-url'] ?? null,
    tableRows: count(values['table-rows'], '--table-rows'),
    verifyRows: count(values['verify-rows'], '--verify-rows'),
    catalog: values.catalog,
    verify: values.verify,
    timeoutSec: Number(values.timeout),
    seed: values.seed,
  };
}

const T0 = process.hrtime.bigint();
function log(msg) {
  const t = (Number(process.hrtime.bigint() - T0) / 1e9).toFixed(0).padStart(5);
  console.log(`[bench +${t}s] ${msg}`);
}

function describe(r) {
  const rss = r.maxRssKiB != null ? `, rss ${((r.maxRssKiB * 1024) / 1e6).toFixed(0)} MB` : '';
  const wr = r.io ? `, wrote ${(r.io.write_bytes / 1e6).toFixed(1)} MB` : '';
  const st = r.ok
    ? 'ok'
    : `FAILED (${r.verifyError ?? (r.timedOut ? 'timeout' : `exit ${r.exitCode}`)})`;
  return `${r.wallSec.toFixed(3)} s, ${st}${rss}${wr}`;
}

/** Removes a tool's destination and state files, then makes an empty destination. */
function fresh(dst, state) {
  removeTree(dst);
  mkdirSync(dst, { recursive: true });
  const dir = dirname(state);
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir))
    if (f.startsWith(basename(state))) rmSync(join(dir, f), { force: true });
}

async function runCase(caseName, opts, ctx) {
  const def = CASES[caseName];
  const tools = toolsForCase(caseName, opts.tools);
  const src = join(ctx.srcRoot, def.src);
  const base = def.base ? join(ctx.srcRoot, def.base) : null;
  const c = { kind: def.kind, src, base, tools: {} };
  if (!tools.length) return c;
  const dstOf = (t) => join(ctx.work, 'dst', caseName, t);
  const stateOf = (t) => join(ctx.work, 'state', `${caseName}-${t}.state`);
  const argvOf = (t, from) =>
    toolArgv(t, { src: from, dst: dstOf(t), state: stateOf(t), template: ctx.template });
  const measure = (argv) =>
    runMeasured(argv, { cwd: REPO, tmpDir: ctx.tmp, timeoutSec: opts.timeoutSec });
  for (const t of tools) c.tools[t] = { argv: argvOf(t, src), prepare: null, runs: [] };

  log(`== ${caseName} (${def.kind}): tools ${tools.join(', ')}; warming page cache (untimed)`);
  warm(src);
  if (base) warm(base);
  const srcSummary = opts.verify === 'none' ? null : treeSummary(src);
  const verify = (r, from) => {
    if (!r.ok || opts.verify === 'none') return r;
    const fromSummary = from === src ? srcSummary : treeSummary(from);
    const content = opts.verify === 'content' || (def.kind === 'update' && from === src);
    r.verifyError =
      compareTree(fromSummary, dstOf(r.tool)) ??
      (content ? compareContent(from, dstOf(r.tool)) : null);
    if (r.verifyError) r.ok = false;
    return r;
  };
  const prepare = async (t, from) => {
    fresh(dstOf(t), stateOf(t));
    const r = verify({ ...(await measure(argvOf(t, from))), tool: t, phase: 'prepare' }, from);
    log(`[${caseName}] prepare ${t} (untimed): ${describe(r)}`);
    if (!r.ok) log(`[${caseName}]   ${t} failed: ${errorGist(r)}`);
    flush();
    return r;
  };

  if (def.kind === 'noop') for (const t of tools) c.tools[t].prepare = await prepare(t, src);
  for (let i = 0; i < opts.runs; i++) {
    const order = tools.slice(i % tools.length).concat(tools.slice(0, i % tools.length));
    for (const t of order) {
      const tag = `[${caseName}] run ${i + 1}/${opts.runs} ${t}`;
      if (def.kind === 'noop' && !c.tools[t].prepare.ok) {
        log(`${tag}: skipped (preparation failed)`);
        continue;
      }
      if (def.kind === 'full') fresh(dstOf(t), stateOf(t));
      if (def.kind === 'update') {
        const p = await prepare(t, base);
        if (!p.ok) {
          c.tools[t].runs.push({ ...p, run: i + 1 });
          continue;
        }
      }
      flush();
      const r = { ...(await measure(argvOf(t, src))), tool: t, phase: 'run', run: i + 1 };
      r.load1 = loadavg()[0];
      verify(r, src);
      log(`${tag}: ${describe(r)}`);
      if (!r.ok) log(`${tag}   stderr: ${errorGist(r)}`);
      c.tools[t].runs.push(r);
      flush();
      if (def.kind !== 'noop') removeTree(dstOf(t));
    }
  }
  for (const t of tools) fresh(dstOf(t), stateOf(t));
  removeTree(join(ctx.work, 'dst', caseName));
  c.summary = summarizeCase(c);
  c.ratios = ratios(c.summary);
  return c;
}

async function main() {
  const opts = parseCli();
  const work = opts.quick ? join(opts.dir, 'quick') : opts.dir;
  const ctx = {
    work,
    srcRoot: join(work, 'src'),
    tmp: join(work, 'tmp'),
    template: tongbuTemplate(opts.tongbuCmd),
    repo: REPO,
    log,
    tongbuBin: opts.tongbuBin,
  };
  for (const d of [ctx.srcRoot, ctx.tmp]) mkdirSync(d, { recursive: true });
  if (!HAVE_TIME) log('WARNING: /usr/bin/time missing (apt-get install -y time): no peak RSS');
  log(
    `work dir ${work}; cases ${opts.cases.join(',')}; tools ${opts.tools.join(',')}; runs ${opts.runs}`,
  );
  log(`tongbu command: ${ctx.template.join(' ')}`);

  const params = workloadParams(opts.quick);
  const needed = new Set(
    opts.cases.flatMap((k) => [CASES[k]?.src, CASES[k]?.base].filter(Boolean)),
  );
  for (const w of ['w1', 'w2', 'w3', 'w4']) {
    if (needed.has(w)) ensureWorkload(ctx.srcRoot, w, params[w], opts.seed, log);
  }

  if (opts.cases.some((k) => CASES[k]?.kind === 'store') && opts.tools.includes('restic')) {
    ensureRestic(log); // apt-get install -y restic when it is missing
  }
  if (opts.cases.includes(TABLE_CASE) && opts.tools.includes('pgloader')) {
    ensurePgloader(log); // apt-get install -y pgloader when it is missing
  }

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outFile = join(opts.dir, `results-${stamp}.json`);
  const results = {
    meta: {
      startedAt: new Date().toISOString(),
      options: { ...opts, tongbuTemplate: ctx.template },
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, totalMemBytes: totalmem() },
      loadavgStart: loadavg(),
      versions: toolVersions(REPO),
      method:
        'warm page cache (one untimed read of the sources per case; caches never dropped); ' +
        'tools interleaved and rotated per run; sync(1) untimed before and after each timed run; ' +
        'wall = hrtime around spawn..exit of /usr/bin/time+bash wrapper; rss = GNU time %M (KiB, ' +
        'largest single process); io = wrapper bash /proc/$$/io after the tool tree was reaped',
      peakRssAvailable: HAVE_TIME,
    },
    params,
    cases: {},
  };
  const save = () => {
    results.meta.loadavgEnd = loadavg();
    const text = JSON.stringify(results, null, 2);
    writeFileSync(outFile, text);
    if (opts.json) writeFileSync(opts.json, text);
  };
  for (const k of opts.cases) {
    results.cases[k] =
      k === TABLE_CASE
        ? await runTableCase(k, opts, ctx)
        : k === CLUSTER_CASE
          ? await runClusterCase(k, opts, ctx)
          : CASES[k].kind === 'store'
            ? await runStoreCase(k, opts, ctx)
            : await runCase(k, opts, ctx);
    save();
  }
  results.meta.finishedAt = new Date().toISOString();
  save();
  // formatReport knows the file cases only: the table and cluster cases have their own tables.
  const fileCases = Object.fromEntries(
    Object.entries(results.cases).filter(([, c]) => c.kind !== 'table' && c.kind !== 'cluster'),
  );
  const report = [
    formatReport({ ...results, cases: fileCases }),
    formatStoreReport(results),
    formatTableReport(results),
    formatClusterReport(results),
  ].filter(Boolean);
  console.log(`\n${report.join('\n\n')}\n`);
  log(`results: ${outFile}${opts.json ? ` and ${opts.json}` : ''}`);
}

main().catch((e) => {
  console.error(`bench: ${e.message}`);
  process.exit(2);
});
