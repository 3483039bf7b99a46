// Case table: SQL table sync (issue 5). Four phases, all against the local database servers:
//
//   full copy    SQLite file (table `runs`, 10 columns) -> PostgreSQL, pgloader vs `tongbu sync`,
//                each run into a dropped target table (interleaved, rotated; checked after)
//   incremental  `tongbu sync --cursor updated_at` after 1 % of the source rows changed
//                (80 % of them updated, 10 % inserted, 10 % deleted), each run a fresh 1 %
//   verify       `tongbu verify` of equal tables, PostgreSQL <-> PostgreSQL and
//                PostgreSQL <-> MariaDB (10M rows; cached in the databases)
//   diff         the same after one row of the second table changed: exit 1, the key named
//
// The SQLite source and the verify tables are generated once and reused. Database clients
// (better-sqlite3, pg, mysql2) are the project's own dependencies, imported lazily so that the
// other cases run without node_modules.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { loadavg } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { flush, runMeasured, sh } from './measure.mjs';
import { errorGist, failureText, median, table } from './report.mjs';
import { splitWords } from './tools.mjs';
import { prng } from './workloads.mjs';

export const TABLE_CASE = 'table';
/** Tools of the table case, in run order (rotated per run). */
export const TABLE_TOOLS = ['pgloader', 'tongbu'];
export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
export const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306/test';
const DEFAULT_TONGBU_BIN = 'node bin/tongbu.js';
/** Bump when the generated data changes: cached sources and verify tables are rebuilt. */
const DATA_VERSION = 1;
const SRC_TABLE = 'runs';
const T = {
  pgloader: 'bench_pgl_runs', // pgloader's target (renamed from `runs` by the load command)
  tongbu: 'bench_runs', // tongbu's full-copy target
  inc: 'bench_runs_inc', // tongbu's incremental target
  va: 'bench_v_a',
  vb: 'bench_v_b',
  vm: 'bench_v_m',
};
export const PHASES = {
  full: 'table-full-copy',
  inc: 'table-incremental',
  eqPg: 'table-verify-pg-pg',
  eqMy: 'table-verify-pg-mariadb',
  diffPg: 'table-diff-pg-pg',
  diffMy: 'table-diff-pg-mariadb',
};
/** Change mix of one incremental run, as fractions of the changed rows (1 % of the table). */
// TABLE_CHANGE_MIX=U,I,D overrides it (e.g. 1,0,0: the changed rows are all updates).
const CHANGE_MIX = (() => {
  const env = process.env['TABLE_CHANGE_MIX'];
  if (env === undefined) return { update: 0.8, insert: 0.1, delete: 0.1 };
  const [update = 1, insert = 0, del = 0] = env.split(',').map(Number);
  return { update, insert, delete: del };
})();
/** Targets from issue 5. */
export const TARGETS = {
  fullCopy: { le: 0.5, phase: PHASES.full, what: 'full copy time tongbu/pgloader' },
  incremental: {
    le: 0.05,
    phase: PHASES.inc,
    what: 'incremental sync (1 % changed) / tongbu full copy',
  },
  verifyPgPg: {
    ltSec: 10,
    phase: PHASES.eqPg,
    what: 'verify of equal tables PostgreSQL<->PostgreSQL',
  },
  verifyPgMy: {
    ltSec: 10,
    phase: PHASES.eqMy,
    what: 'verify of equal tables PostgreSQL<->MariaDB',
  },
  diffPg: { named: true, what: 'one differing row found and named, PostgreSQL<->PostgreSQL' },
  diffMy: { named: true, what: 'one differing row found and named, PostgreSQL<->MariaDB' },
};

/** Row counts: full size is the issue's, --quick a tenth. Overridable from the command line. */
export function tableParams(quick, { rows, verifyRows } = {}) {
  return {
    rows: rows ?? (quick ? 100_000 : 1_000_000),
    verifyRows: verifyRows ?? (quick ? 1_000_000 : 10_000_000),
    changeFraction: 0.01,
    changeMix: CHANGE_MIX,
  };
}

/** Installs pgloader with apt when it is missing (the table case compares against it). */
export function ensurePgloader(log) {
  if (spawnSync('pgloader', ['--version']).status === 0) return;
  log('pgloader missing: apt-get install -y pgloader');
  const r = spawnSync('apt-get', ['install', '-y', 'pgloader'], { encoding: 'utf8' });
  if (r.status !== 0)
    log(`apt-get install pgloader failed: ${(r.stderr || '').trim().slice(-300)}`);
}

function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return (r.stdout || r.stderr).split('\n')[0].trim();
}

const tryJson = (s) => {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
};

// ---- data: the SQLite source ----------------------------------------------------------------

const MODELS = ['resnet50', 'vit-b16', 'bert-base', 'llama-7b', 'gpt2-md', 't5-small', 'clip-l14'];
const TAGS = ['baseline', 'sweep', 'ablation', 'prod', 'debug', null];
const T0_CREATED = Date.UTC(2023, 0, 1); // ms

/** 'YYYY-MM-DD HH:MM:SS.ffffff' from whole-second epoch ms and microseconds. */
function tsText(ms, us) {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${String(us).padStart(6, '0')}`;
}
const tsMs = (s) => Date.parse(`${s.slice(0, 19).replace(' ', 'T')}Z`);

/** A row generator: (id, updatedAt?) -> the 10 column values of `runs`, deterministic. */
function rowMaker(rnd) {
  return (id, updatedAt) => {
    const model = MODELS[rnd.int(0, MODELS.length - 1)];
    const lr = ['1e-3', '3e-4', '1e-4', '3e-5'][rnd.int(0, 3)];
    const bs = 2 ** rnd.int(4, 10);
    const createdMs = T0_CREATED + id * 30_000 + rnd.int(0, 29) * 1000;
    const created = tsText(createdMs, rnd.int(0, 999_999));
    const updated =
      updatedAt ?? tsText(createdMs + rnd.int(0, 30 * 86_400) * 1000, rnd.int(0, 999_999));
    return [
      id,
      rnd.int(1, 50_000), // run_id
      `${model}-lr${lr}-bs${bs}-${id.toString(36)}`, // name
      rnd.int(0, 999_999) / 10_000, // score (NUMERIC, 4 decimals)
      rnd.next() * 5, // loss (double)
      rnd.int(0, 1_000_000), // step
      created,
      rnd.next() < 0.3 ? 1 : 0, // flag
      TAGS[rnd.int(0, TAGS.length - 1)], // tag (NULL in 1 of 6)
      updated,
    ];
  };
}

const SQLITE_DDL = `CREATE TABLE ${SRC_TABLE} (
  id INTEGER PRIMARY KEY,
  run_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  score NUMERIC,
  loss DOUBLE PRECISION,
  step INTEGER,
  created TIMESTAMP,
  flag BOOLEAN,
  tag TEXT,
  updated_at TIMESTAMP NOT NULL
)`;

async function sqlite() {
  return (await import('better-sqlite3')).default;
}

/** The cached SQLite source DIR/table/src/runs.db (regenerated when its marker differs). */
async function ensureSource(root, params, seed, log) {
  const Database = await sqlite();
  const dir = join(root, 'src');
  const file = join(dir, 'runs.db');
  const marker = join(dir, 'runs.params.json');
  const want = JSON.stringify({ version: DATA_VERSION, rows: params.rows, seed });
  if (existsSync(file) && existsSync(marker) && readFileSync(marker, 'utf8') === want) {
    return file;
  }
  mkdirSync(dir, { recursive: true });
  rmSync(marker, { force: true });
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  log(`[table] generating ${params.rows.toLocaleString('en')} rows into ${file}`);
  const t0 = Date.now();
  const db = new Database(tmp);
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.exec(SQLITE_DDL);
  const ins = db.prepare(`INSERT INTO ${SRC_TABLE} VALUES (?,?,?,?,?,?,?,?,?,?)`);
  const make = rowMaker(prng(seed, 'table-runs'));
  const batch = db.transaction((lo, hi) => {
    for (let id = lo; id <= hi; id++) ins.run(make(id));
  });
  for (let lo = 1; lo <= params.rows; lo += 100_000) batch(lo, Math.min(params.rows, lo + 99_999));
  db.exec(`CREATE INDEX ${SRC_TABLE}_updated_at ON ${SRC_TABLE}(updated_at); ANALYZE`);
  db.pragma('journal_mode = DELETE');
  db.close();
  renameSync(tmp, file);
  writeFileSync(marker, want);
  log(`[table] generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return file;
}

// ---- checks: the same aggregates on the source and on a target --------------------------------
// count, sums of the integer columns, NULL count, text lengths, max(updated_at), the sum of
// updated_at in whole epoch seconds, and the float sums (compared with a relative tolerance).

const EXACT = ['n', 'sum_id', 'sum_run_id', 'sum_step', 'sum_flag', 'n_tag', 'len_name'];
const TEXT = ['max_updated', 'sum_updated_s'];
const FLOAT = ['sum_loss', 'sum_score'];

function sqliteChecks(Database, file) {
  const db = new Database(file, { readonly: true });
  try {
    const r = db
      .prepare(
        `SELECT count(*) AS n, sum(id) AS sum_id, sum(run_id) AS sum_run_id, sum(step) AS sum_step,
           sum(flag) AS sum_flag, count(tag) AS n_tag, sum(length(name)) AS len_name,
           max(updated_at) AS max_updated,
           sum(CAST(strftime('%s', updated_at) AS INTEGER)) AS sum_updated_s,
           sum(loss) AS sum_loss, sum(score) AS sum_score
         FROM ${SRC_TABLE}`,
      )
      .get();
    return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v == null ? null : String(v)]));
  } finally {
    db.close();
  }
}

async function pgChecks(pgc, tbl) {
  const { rows } = await pgc.query(
    `SELECT count(*)::text AS n, sum(id)::text AS sum_id, sum(run_id)::text AS sum_run_id,
       sum(step)::text AS sum_step, sum(flag::int)::text AS sum_flag, count(tag)::text AS n_tag,
       sum(length(name))::text AS len_name,
       to_char(max(updated_at::timestamp), 'YYYY-MM-DD HH24:MI:SS.US') AS max_updated,
       sum(floor(extract(epoch FROM updated_at::timestamp)))::bigint::text AS sum_updated_s,
       sum(loss::float8)::text AS sum_loss, sum(score::numeric)::text AS sum_score
     FROM ${tbl}`,
  );
  return rows[0];
}

/** null when the target's aggregates equal the source's, else the first difference. */
function compareChecks(src, dst) {
  for (const k of [...EXACT, ...TEXT]) {
    if (String(src[k]) !== String(dst[k])) return `${k}: target ${dst[k]} != source ${src[k]}`;
  }
  for (const k of FLOAT) {
    const a = Number(src[k]);
    const b = Number(dst[k]);
    if (!(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a)))) {
      return `${k}: target ${dst[k]} != source ${src[k]}`;
    }
  }
  return null;
}

// ---- database connections -----------------------------------------------------------------

async function connectPg(url) {
  const pg = (await import('pg')).default;
  const c = new pg.Client({ connectionString: url, application_name: 'tongbu-bench' });
  await c.connect();
  await c.query(`SET TIME ZONE 'UTC'`);
  return c;
}

async function connectMy(url) {
  const mysql = (await import('mysql2/promise')).default;
  const c = await mysql.createConnection({ uri: url, dateStrings: true, supportBigNumbers: true });
  await c.query(`SET time_zone = '+00:00'`);
  return c;
}

const dropPg = (pgc, tbl) => pgc.query(`DROP TABLE IF EXISTS ${tbl}`);

/** Dirty pages of the previous run written out (untimed): PostgreSQL CHECKPOINT, then sync. */
async function settle(pgc) {
  try {
    await pgc.query('CHECKPOINT');
  } catch {
    /* not superuser: sync(1) only */
  }
  flush();
}

/** Removes a state file and its -wal/-shm/-journal companions. */
function removeState(path) {
  const dir = dirname(path);
  if (!existsSync(dir)) return;
  for (const f of readdirSync(dir)) {
    if (f.startsWith(basename(path))) rmSync(join(dir, f), { force: true });
  }
}

// ---- verify tables: 10M rows, identical in both engines ---------------------------------------
// Values are functions of the id i, chosen to be exact in both engines: loss = i/4 (exact in a
// double), score = (i % 1e6)/1e4 as DECIMAL(12,4), timestamps in 2020-2021 (inside TIMESTAMP's
// 1970-2038 range) with microseconds, written with the session time zone at UTC.

const PG_V_COLS = `id bigint NOT NULL, run_id integer, name text, score numeric(12,4),
  loss double precision, step bigint, created timestamptz, flag boolean, tag varchar(32),
  updated_at timestamp`;
const PG_V_SELECT = (n) => `SELECT i, (i % 100000)::int, 'run-' || i,
    ((i % 1000000)::numeric / 10000)::numeric(12,4), i / 4.0, i * 10,
    timestamptz '2020-01-01 00:00:00+00' + i * interval '1 second'
      + (i % 1000000) * interval '1 microsecond',
    i % 3 = 0, CASE WHEN i % 7 = 0 THEN NULL ELSE 'tag-' || (i % 50) END,
    timestamp '2021-06-01 00:00:00' + i * interval '2 seconds' + (i % 997) * interval '1 microsecond'
  FROM generate_series(1::bigint, ${n}::bigint) AS i`;
const MY_V_DDL = (tbl, comment) => `CREATE TABLE ${tbl} (
  id BIGINT NOT NULL PRIMARY KEY, run_id INT, name TEXT, score DECIMAL(12,4), loss DOUBLE,
  step BIGINT, created TIMESTAMP(6) NULL DEFAULT NULL, flag BOOLEAN, tag VARCHAR(32),
  updated_at DATETIME(6) NULL DEFAULT NULL) ENGINE=InnoDB COMMENT='${comment}'`;
const MY_V_SELECT = (lo, hi) => `SELECT seq, seq % 100000, CONCAT('run-', seq),
    CAST((seq % 1000000) / 10000 AS DECIMAL(12,4)), seq / 4, seq * 10,
    TIMESTAMP'2020-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
    seq % 3 = 0, IF(seq % 7 = 0, NULL, CONCAT('tag-', seq % 50)),
    TIMESTAMP'2021-06-01 00:00:00' + INTERVAL (seq * 2) SECOND + INTERVAL (seq % 997) MICROSECOND
  FROM seq_${lo}_to_${hi}`;
// Aggregates compared across engines once after building (untimed).
const PG_V_AGG = (tbl) => `SELECT count(*)::text AS n, sum(id)::text AS sum_id,
    sum(run_id)::text AS sum_run_id, sum(score)::text AS sum_score,
    sum(loss)::numeric(40,4)::text AS sum_loss,
    sum(step)::text AS sum_step, sum(flag::int)::text AS sum_flag, count(tag)::text AS n_tag,
    sum(length(name) + coalesce(length(tag), 0))::text AS len_text,
    to_char(max(created), 'YYYY-MM-DD HH24:MI:SS.US') AS max_created,
    sum(extract(epoch FROM created) * 1000000)::numeric(40,0)::text AS sum_created_us,
    sum(extract(epoch FROM updated_at) * 1000000)::numeric(40,0)::text AS sum_updated_us
  FROM ${tbl}`;
const MY_V_AGG = (tbl) => `SELECT CAST(count(*) AS CHAR) AS n, CAST(sum(id) AS CHAR) AS sum_id,
    CAST(sum(run_id) AS CHAR) AS sum_run_id, CAST(sum(score) AS CHAR) AS sum_score,
    CAST(CAST(sum(loss) AS DECIMAL(40,4)) AS CHAR) AS sum_loss, CAST(sum(step) AS CHAR) AS sum_step,
    CAST(sum(flag) AS CHAR) AS sum_flag, CAST(count(tag) AS CHAR) AS n_tag,
    CAST(sum(char_length(name) + coalesce(char_length(tag), 0)) AS CHAR) AS len_text,
    DATE_FORMAT(max(created), '%Y-%m-%d %H:%i:%s.%f') AS max_created,
    CAST(CAST(sum(unix_timestamp(created) * 1000000) AS DECIMAL(40,0)) AS CHAR) AS sum_created_us,
    CAST(CAST(sum(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', updated_at)) AS DECIMAL(40,0))
      AS CHAR) AS sum_updated_us
  FROM ${tbl}`;

/** A decimal string without trailing fractional zeros ('12.5000' -> '12.5', '3.0' -> '3'). */
const normDec = (x) =>
  x == null ? null : String(x).includes('.') ? String(x).replace(/\.?0+$/, '') : String(x);

function diffAgg(a, b) {
  const out = [];
  for (const k of Object.keys(a)) {
    if (normDec(a[k]) !== normDec(b[k])) out.push(`${k}: ${a[k]} vs ${b[k]}`);
  }
  return out;
}

async function ensureVerifyTables(pgc, myc, n, log) {
  const comment = `tongbu-bench verify v${DATA_VERSION} rows=${n}`;
  const info = { built: [], reused: [], crossCheck: null };
  const pgOk = async (tbl) => {
    const { rows } = await pgc.query(`SELECT obj_description(to_regclass($1), 'pg_class') AS c`, [
      tbl,
    ]);
    if (rows[0]?.c !== comment) return false;
    const cnt = await pgc.query(`SELECT count(*)::bigint AS n FROM ${tbl}`);
    return Number(cnt.rows[0].n) === n;
  };
  for (const tbl of [T.va, T.vb]) {
    if (await pgOk(tbl)) {
      info.reused.push(tbl);
      continue;
    }
    const t0 = Date.now();
    log(`[table] building ${tbl} in PostgreSQL (${n.toLocaleString('en')} rows, untimed)`);
    await dropPg(pgc, tbl);
    await pgc.query(`CREATE TABLE ${tbl} (${PG_V_COLS})`);
    // b is a copy of a when a is there (faster than generating again).
    const from = tbl === T.vb && (await pgOk(T.va)) ? `SELECT * FROM ${T.va}` : PG_V_SELECT(n);
    await pgc.query(`INSERT INTO ${tbl} ${from}`);
    await pgc.query(`ALTER TABLE ${tbl} ADD PRIMARY KEY (id)`);
    await pgc.query(`VACUUM ANALYZE ${tbl}`);
    await pgc.query(`COMMENT ON TABLE ${tbl} IS '${comment}'`);
    info.built.push(tbl);
    log(`[table] ${tbl} built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  const [[mrow]] = await myc.query(
    `SELECT table_comment AS c FROM information_schema.tables
     WHERE table_schema = DATABASE() AND table_name = ?`,
    [T.vm],
  );
  let myOk = mrow?.c === comment;
  if (myOk) {
    const [[cnt]] = await myc.query(`SELECT count(*) AS n FROM ${T.vm}`);
    myOk = Number(cnt.n) === n;
  }
  if (myOk) info.reused.push(T.vm);
  else {
    const t0 = Date.now();
    log(`[table] building ${T.vm} in MariaDB (${n.toLocaleString('en')} rows, untimed)`);
    await myc.query(`DROP TABLE IF EXISTS ${T.vm}`);
    // The comment is set only when the table is complete: a half-built table is rebuilt.
    await myc.query(MY_V_DDL(T.vm, 'building'));
    const step = 1_000_000;
    for (let lo = 1; lo <= n; lo += step) {
      await myc.query(`INSERT INTO ${T.vm} ${MY_V_SELECT(lo, Math.min(n, lo + step - 1))}`);
    }
    await myc.query(`ANALYZE TABLE ${T.vm}`);
    await myc.query(`ALTER TABLE ${T.vm} COMMENT = '${comment}'`);
    info.built.push(T.vm);
    log(`[table] ${T.vm} built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  if (info.built.length) {
    // Same content in both engines? (untimed; once per build)
    const a = (await pgc.query(PG_V_AGG(T.va))).rows[0];
    const b = (await pgc.query(PG_V_AGG(T.vb))).rows[0];
    const [[m]] = await myc.query(MY_V_AGG(T.vm));
    info.crossCheck = { pgA: a, pgB: b, mariadb: m, diffAB: diffAgg(a, b), diffAM: diffAgg(a, m) };
    for (const [what, d] of [
      [`${T.va} vs ${T.vb}`, info.crossCheck.diffAB],
      [`${T.va} vs ${T.vm}`, info.crossCheck.diffAM],
    ]) {
      if (d.length) log(`[table] WARNING verify tables differ (${what}): ${d.join('; ')}`);
    }
  }
  return info;
}

/** The one-row change of the diff phase and its undo, per engine. */
const DIFF_SQL = {
  pg: {
    change: `UPDATE ${T.vb} SET name = 'x' WHERE id = $1`,
    restore: `UPDATE ${T.vb} SET name = 'run-' || id WHERE id = $1 AND name IS DISTINCT FROM 'run-' || id`,
  },
  my: {
    change: `UPDATE ${T.vm} SET name = 'x' WHERE id = ?`,
    restore: `UPDATE ${T.vm} SET name = CONCAT('run-', id) WHERE id = ?`,
  },
};

/** Does the verify output name `key`? Looks through the JSON, else the text, for the value. */
export function namesKey(text, key) {
  const json = tryJson(text.trim());
  if (json != null) {
    let found = false;
    const walk = (v) => {
      if (found) return;
      if (typeof v === 'number' || typeof v === 'bigint') found = String(v) === String(key);
      else if (typeof v === 'string') found = v === String(key) || v === `[${key}]`;
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    walk(json);
    if (found) return true;
  }
  return new RegExp(`(^|[^\\d.])${key}([^\\d.]|$)`).test(text);
}

// ---- the case -----------------------------------------------------------------------------

function describeRun(r) {
  const st = r.ok
    ? 'ok'
    : `FAILED (${r.verifyError ?? (r.timedOut ? 'timeout' : `exit ${r.exitCode}`)})`;
  const parts = [`${r.wallSec.toFixed(3)} s`, st];
  if (r.maxRssKiB != null) parts.push(`rss ${((r.maxRssKiB * 1024) / 1e6).toFixed(0)} MB`);
  if (r.change) {
    const c = r.change;
    parts.push(`changed ${c.updated} upd + ${c.inserted} ins + ${c.deleted} del`);
  }
  if (r.keyNamed != null) parts.push(r.keyNamed ? 'key named' : 'key NOT named');
  return parts.join(', ');
}

function stats(xs) {
  const v = xs.filter((x) => x !== null && x !== undefined && Number.isFinite(x));
  if (!v.length) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

function summarize(runs) {
  const ok = runs.filter((x) => x.ok);
  const failed = runs.filter((x) => !x.ok);
  return {
    okRuns: ok.length,
    failedRuns: failed.length,
    wallSec: stats(ok.map((x) => x.wallSec)),
    maxRssKiB: stats(ok.map((x) => x.maxRssKiB)),
    failure: failed.length ? failureText(failed[failed.length - 1]) : null,
  };
}

/** Applies one incremental change to the SQLite working copy (untimed); returns what changed. */
function mutate(Database, file, seed, run, fraction) {
  const db = new Database(file);
  try {
    const ids = db.prepare(`SELECT id FROM ${SRC_TABLE}`).pluck().all();
    const rnd = prng(seed, `table-inc-${run}`);
    const n = Math.max(1, Math.round(ids.length * fraction));
    const inserted = Math.round(n * CHANGE_MIX.insert);
    const deleted = Math.round(n * CHANGE_MIX.delete);
    const updated = n - inserted - deleted;
    // Partial Fisher-Yates: the first updated+deleted entries become a sample of distinct ids.
    for (let i = 0; i < updated + deleted; i++) {
      const j = rnd.int(i, ids.length - 1);
      [ids[i], ids[j]] = [ids[j], ids[i]];
    }
    const maxUpdated = db.prepare(`SELECT max(updated_at) FROM ${SRC_TABLE}`).pluck().get();
    const maxId = db.prepare(`SELECT max(id) FROM ${SRC_TABLE}`).pluck().get();
    const base = tsMs(maxUpdated) + 86_400_000; // a day after every existing updated_at
    const stamp = (k) => tsText(base + Math.floor(k / 1000) * 1000, (k % 1000) * 997);
    const upd = db.prepare(
      `UPDATE ${SRC_TABLE} SET loss = loss * 0.5 + 0.001, step = step + 1, updated_at = ? WHERE id = ?`,
    );
    const ins = db.prepare(`INSERT INTO ${SRC_TABLE} VALUES (?,?,?,?,?,?,?,?,?,?)`);
    const del = db.prepare(`DELETE FROM ${SRC_TABLE} WHERE id = ?`);
    const make = rowMaker(rnd);
    db.transaction(() => {
      for (let k = 0; k < updated; k++) upd.run(stamp(k), ids[k]);
      for (let k = 0; k < inserted; k++) ins.run(make(maxId + 1 + k, stamp(updated + k)));
      for (let k = 0; k < deleted; k++) del.run(ids[updated + k]);
    })();
    return { rowsBefore: ids.length, changed: n, updated, inserted, deleted };
  } finally {
    db.close();
  }
}

/** Runs the table case. ctx: { work, tmp, repo, log, tongbuBin }. */
export async function runTableCase(caseName, opts, ctx) {
  const params = tableParams(opts.quick, { rows: opts.tableRows, verifyRows: opts.verifyRows });
  const root = join(ctx.work, 'table');
  const stateDir = join(root, 'state');
  const pgUrl = opts.pgUrl ?? DEFAULT_PG_URL;
  const myUrl = opts.mysqlUrl ?? DEFAULT_MYSQL_URL;
  const tools = TABLE_TOOLS.filter((t) => opts.tools.includes(t));
  const bin = splitWords(ctx.tongbuBin ?? DEFAULT_TONGBU_BIN);
  const measure = (argv) =>
    runMeasured(argv, { cwd: ctx.repo, tmpDir: ctx.tmp, timeoutSec: opts.timeoutSec });
  const log = ctx.log;
  const c = {
    kind: 'table',
    params,
    quick: opts.quick,
    pgUrl,
    mysqlUrl: myUrl,
    tables: T,
    phases: PHASES,
    tools,
    versions: {
      pgloader: firstLine('pgloader', ['--version']),
      psql: firstLine('psql', ['--version']),
    },
    commands: {},
    runs: Object.fromEntries(Object.values(PHASES).map((p) => [p, []])),
    setup: {},
    error: null,
  };
  mkdirSync(stateDir, { recursive: true });
  let pgc = null;
  let myc = null;
  try {
    const Database = await sqlite();
    try {
      pgc = await connectPg(pgUrl);
      c.versions.postgres = (await pgc.query('SHOW server_version')).rows[0].server_version;
    } catch (e) {
      throw new Error(`PostgreSQL at ${pgUrl}: ${e.message}`);
    }
    const srcFile = await ensureSource(root, params, opts.seed, log);
    const srcUrl = (file) => `sqlite:${file}?table=${SRC_TABLE}`;
    const pgT = (tbl) => `${pgUrl}?table=${tbl}`;
    const srcChecks = sqliteChecks(Database, srcFile);
    c.sourceChecks = srcChecks;
    const warmSrc = () => sh('cat "$1" > /dev/null', srcFile);

    // -- full copy ----------------------------------------------------------------------------
    const loadFile = join(root, 'pgloader', 'runs.load');
    mkdirSync(dirname(loadFile), { recursive: true });
    const pgloaderUrl = pgUrl.replace(/^postgres(ql)?:/, 'postgresql:');
    writeFileSync(
      loadFile,
      [
        'LOAD DATABASE',
        `  FROM sqlite://${srcFile}`,
        `  INTO ${pgloaderUrl}`,
        'WITH include drop, create tables, create indexes, reset sequences',
        `INCLUDING ONLY TABLE NAMES LIKE '${SRC_TABLE}'`,
        `ALTER TABLE NAMES MATCHING '${SRC_TABLE}' RENAME TO '${T.pgloader}';`,
        '',
      ].join('\n'),
    );
    const pgloaderArgv = [
      'pgloader',
      '--root-dir',
      join(root, 'pgloader', 'out'),
      '--logfile',
      join(root, 'pgloader', 'out', 'pgloader.log'),
      loadFile,
    ];
    const fullState = (i) => join(stateDir, `full-${i}.state`);
    const fullArgv = {
      pgloader: () => pgloaderArgv,
      tongbu: (i) => [
        ...bin,
        'sync',
        srcUrl(srcFile),
        pgT(T.tongbu),
        '--state',
        fullState(i),
        '--json',
      ],
    };
    c.commands.full = {
      pgloader: pgloaderArgv,
      pgloaderLoadFile: readFileSync(loadFile, 'utf8'),
      tongbu: fullArgv.tongbu('N'),
    };
    const checkPg = async (r, tbl, expect) => {
      if (!r.ok || opts.verify === 'none') return r;
      try {
        r.checks = await pgChecks(pgc, tbl);
        r.verifyError = compareChecks(expect, r.checks);
      } catch (e) {
        r.verifyError = `check query on ${tbl} failed: ${e.message}`;
      }
      if (r.verifyError) r.ok = false;
      return r;
    };
    log(
      `== ${caseName} (table): ${params.rows.toLocaleString('en')} rows SQLite -> PostgreSQL; ` +
        `tools ${tools.join(', ') || 'none'}`,
    );
    for (let i = 0; i < opts.runs; i++) {
      const order = tools.slice(i % tools.length).concat(tools.slice(0, i % tools.length));
      for (const t of order) {
        const tag = `[${caseName}] ${PHASES.full} run ${i + 1}/${opts.runs} ${t}`;
        const tbl = T[t];
        await dropPg(pgc, tbl);
        if (t === 'tongbu') removeState(fullState(i + 1));
        warmSrc();
        await settle(pgc);
        const r = { ...(await measure(fullArgv[t](i + 1))), tool: t, phase: 'run', run: i + 1 };
        r.load1 = loadavg()[0];
        if (t === 'tongbu') r.json = tryJson(r.stdoutTail);
        await checkPg(r, tbl, srcChecks);
        log(`${tag}: ${describeRun(r)}`);
        if (!r.ok) log(`${tag}   failed: ${r.verifyError ?? (errorGist(r) || 'no output')}`);
        c.runs[PHASES.full].push(r);
        removeState(fullState(i + 1));
      }
    }
    await dropPg(pgc, T.pgloader);
    await dropPg(pgc, T.tongbu);

    // -- incremental --------------------------------------------------------------------------
    if (tools.includes('tongbu')) {
      const incDir = join(root, 'inc');
      mkdirSync(incDir, { recursive: true });
      const incFile = join(incDir, 'runs.db');
      for (const f of readdirSync(incDir)) rmSync(join(incDir, f), { force: true });
      copyFileSync(srcFile, incFile);
      const incState = join(stateDir, 'incremental.state');
      removeState(incState);
      await dropPg(pgc, T.inc);
      const incArgv = [
        ...bin,
        'sync',
        srcUrl(incFile),
        pgT(T.inc),
        '--cursor',
        'updated_at',
        '--state',
        incState,
        '--json',
      ];
      c.commands.incremental = incArgv;
      const tag0 = `[${caseName}] ${PHASES.inc}`;
      log(`${tag0}: full copy with --cursor updated_at into ${T.inc} (untimed preparation)`);
      await settle(pgc);
      const prep = { ...(await measure(incArgv)), tool: 'tongbu', phase: 'prepare' };
      prep.json = tryJson(prep.stdoutTail);
      await checkPg(prep, T.inc, srcChecks);
      c.setup.incrementalPrepare = prep;
      log(`${tag0} prepare: ${describeRun(prep)}`);
      if (!prep.ok) {
        log(`${tag0}   failed: ${prep.verifyError ?? (errorGist(prep) || 'no output')}`);
        log(`${tag0}: timed runs skipped (the preparation failed)`);
      }
      for (let i = 0; prep.ok && i < opts.runs; i++) {
        const tag = `${tag0} run ${i + 1}/${opts.runs} tongbu`;
        const change = mutate(Database, incFile, opts.seed, i + 1, params.changeFraction);
        const expect = sqliteChecks(Database, incFile);
        sh('cat "$1" > /dev/null', incFile);
        await settle(pgc);
        const r = { ...(await measure(incArgv)), tool: 'tongbu', phase: 'run', run: i + 1 };
        r.load1 = loadavg()[0];
        r.change = change;
        r.json = tryJson(r.stdoutTail);
        await checkPg(r, T.inc, expect);
        log(`${tag}: ${describeRun(r)}`);
        if (!r.ok) log(`${tag}   failed: ${r.verifyError ?? (errorGist(r) || 'no output')}`);
        c.runs[PHASES.inc].push(r);
      }
      await dropPg(pgc, T.inc);
      removeState(incState);
      rmSync(incDir, { recursive: true, force: true });
    }

    // -- verify -------------------------------------------------------------------------------
    if (tools.includes('tongbu')) {
      try {
        myc = await connectMy(myUrl);
        const [[v]] = await myc.query('SELECT VERSION() AS v');
        c.versions.mariadb = v.v;
      } catch (e) {
        throw new Error(`MariaDB at ${myUrl}: ${e.message}`);
      }
      const n = params.verifyRows;
      const key = Math.floor(n / 2);
      c.diffKey = key;
      c.setup.verifyTables = await ensureVerifyTables(pgc, myc, n, log);
      await pgc.query(DIFF_SQL.pg.restore, [key]); // undo an interrupted earlier diff run
      await myc.query(DIFF_SQL.my.restore, [key]);
      const myT = (tbl) => `${myUrl}?table=${tbl}`;
      const pairs = {
        pg: [pgT(T.va), pgT(T.vb)],
        my: [pgT(T.va), myT(T.vm)],
      };
      const verifyArgv = (p) => [...bin, 'verify', ...pairs[p], '--json'];
      c.commands.verify = { pg: verifyArgv('pg'), my: verifyArgv('my') };
      // Warm both servers' caches with one full read of each table (untimed).
      log(`[${caseName}] warming ${T.va}, ${T.vb}, ${T.vm} (one untimed full read each)`);
      for (const tbl of [T.va, T.vb]) {
        await pgc.query(`SELECT count(*), sum(length(name)) FROM ${tbl}`);
      }
      await myc.query(`SELECT count(*), sum(length(name)) FROM ${T.vm}`);
      const timedVerify = async (phase, p, expectExit, i) => {
        const tag = `[${caseName}] ${phase} run ${i + 1}/${opts.runs} tongbu`;
        await settle(pgc);
        const r = { ...(await measure(verifyArgv(p))), tool: 'tongbu', phase: 'run', run: i + 1 };
        r.load1 = loadavg()[0];
        r.json = tryJson(r.stdoutTail);
        r.expectExit = expectExit;
        r.ok = !r.timedOut && r.exitCode === expectExit;
        if (expectExit === 1 && r.exitCode === 1) {
          r.keyNamed = namesKey(`${r.stdoutTail}\n${r.stderrTail}`, key);
          if (!r.keyNamed) {
            r.ok = false;
            r.verifyError = `differing key ${key} not named in the output`;
          }
        } else if (!r.ok && r.exitCode === 1 && expectExit === 0) {
          r.verifyError = 'reported differences between equal tables';
        } else if (!r.ok && r.exitCode === 0) {
          r.verifyError = 'reported equal tables although one row differs';
        }
        log(`${tag}: ${describeRun(r)}`);
        if (!r.ok) log(`${tag}   failed: ${r.verifyError ?? (errorGist(r) || 'no output')}`);
        c.runs[phase].push(r);
      };
      for (const [eq, diff, p, db] of [
        [PHASES.eqPg, PHASES.diffPg, 'pg', pgc],
        [PHASES.eqMy, PHASES.diffMy, 'my', myc],
      ]) {
        for (let i = 0; i < opts.runs; i++) await timedVerify(eq, p, 0, i);
        log(`[${caseName}] ${diff}: row id=${key} of the second table changed (name = 'x')`);
        await db.query(DIFF_SQL[p].change, [key]);
        try {
          for (let i = 0; i < opts.runs; i++) await timedVerify(diff, p, 1, i);
        } finally {
          await db.query(DIFF_SQL[p].restore, [key]);
        }
      }
    }
  } catch (e) {
    c.error = e.message;
    log(`[${caseName}] FAILED: ${e.message}`);
  } finally {
    await pgc?.end().catch(() => {});
    await myc?.end().catch(() => {});
  }
  c.summary = {};
  for (const phase of Object.values(PHASES)) {
    const runs = c.runs[phase];
    const byTool = {};
    for (const t of new Set(runs.map((r) => r.tool))) {
      byTool[t] = summarize(runs.filter((r) => r.tool === t));
    }
    c.summary[phase] = byTool;
  }
  // A failed preparation shows in the incremental row (no timed run was possible).
  const prep = c.setup.incrementalPrepare;
  if (prep && !prep.ok && !c.runs[PHASES.inc].length) {
    c.summary[PHASES.inc].tongbu = { ...summarize([prep]), failedRuns: 0, skippedRuns: opts.runs };
  }
  c.ratios = tableRatios(c);
  return c;
}

const ratio = (a, b) => (a != null && b != null && b > 0 ? a / b : null);

function tableRatios(c) {
  const s = c.summary;
  const med = (phase, tool = 'tongbu') => s[phase]?.[tool]?.wallSec?.median ?? null;
  const ran = (phase) => s[phase]?.tongbu != null;
  const allFailed = (phase) => ran(phase) && s[phase].tongbu.okRuns === 0;
  const values = {
    fullCopy: ratio(med(PHASES.full), med(PHASES.full, 'pgloader')),
    incremental: ratio(med(PHASES.inc), med(PHASES.full)),
    incrementalVsPrepare: ratio(
      med(PHASES.inc),
      c.setup.incrementalPrepare?.ok ? c.setup.incrementalPrepare.wallSec : null,
    ),
    verifyPgPg: med(PHASES.eqPg),
    verifyPgMy: med(PHASES.eqMy),
    diffPg: ran(PHASES.diffPg) ? s[PHASES.diffPg].tongbu : null,
    diffMy: ran(PHASES.diffMy) ? s[PHASES.diffMy].tongbu : null,
  };
  const targets = {};
  for (const [k, t] of Object.entries(TARGETS)) {
    const v = values[k];
    let met = null;
    let value = v;
    // tongbu ran the phase and no run succeeded: not met (rather than unknown).
    if (t.le != null) met = v != null ? v <= t.le : allFailed(t.phase) ? false : null;
    else if (t.ltSec != null) {
      met = v != null ? v < t.ltSec : allFailed(t.phase) ? false : null;
    } else if (t.named) {
      value = v ? `${v.okRuns}/${v.okRuns + v.failedRuns}` : null;
      met = v ? v.okRuns > 0 && v.failedRuns === 0 : null;
    }
    targets[k] = { ...t, value, met };
  }
  return { ...values, diffPg: targets.diffPg.value, diffMy: targets.diffMy.value, targets };
}

// ---- report --------------------------------------------------------------------------------

const f2 = (x) => (x == null ? '-' : x.toFixed(x >= 100 ? 1 : x >= 10 ? 2 : 3));
const rx = (x) => (x == null ? '-' : `${x.toFixed(3)}x`);

/** The table case's table, the targets, and failures; '' when the case did not run. */
export function formatTableReport(results) {
  const out = [];
  for (const [caseName, c] of Object.entries(results.cases)) {
    if (c.kind !== 'table') continue;
    const rows = [['phase', 'tool', 'ok', 'median s', 'min-max s', 'RSS MB', 'rows', 'krows/s']];
    const notes = [];
    const rowsOf = {
      [PHASES.full]: c.params.rows,
      [PHASES.inc]: Math.round(c.params.rows * c.params.changeFraction),
      [PHASES.eqPg]: c.params.verifyRows,
      [PHASES.eqMy]: c.params.verifyRows,
      [PHASES.diffPg]: c.params.verifyRows,
      [PHASES.diffMy]: c.params.verifyRows,
    };
    for (const phase of Object.values(PHASES)) {
      for (const [tool, t] of Object.entries(c.summary?.[phase] ?? {})) {
        const m = t.wallSec?.median;
        rows.push([
          phase,
          tool,
          `${t.okRuns}/${t.okRuns + t.failedRuns + (t.skippedRuns ?? 0)}`,
          f2(m),
          t.wallSec ? `${f2(t.wallSec.min)}-${f2(t.wallSec.max)}` : '-',
          t.maxRssKiB ? ((t.maxRssKiB.median * 1024) / 1e6).toFixed(0) : '-',
          rowsOf[phase].toLocaleString('en'),
          m ? (rowsOf[phase] / m / 1000).toFixed(0) : '-',
        ]);
        if (t.failure) notes.push(`${phase} ${tool}: ${t.failure}`);
      }
    }
    let text = rows.length > 1 ? table(rows) : '(no runs)';
    text +=
      `\n\n${caseName}: ${c.params.rows.toLocaleString('en')} rows x 10 columns SQLite -> ` +
      `PostgreSQL; incremental = ${(c.params.changeFraction * 100).toFixed(0)} % of the rows ` +
      `changed per run (${CHANGE_MIX.update * 100} % updated, ${CHANGE_MIX.insert * 100} % inserted, ${CHANGE_MIX.delete * 100} % deleted); verify tables ` +
      `${c.params.verifyRows.toLocaleString('en')} rows. rows = rows the phase handles ` +
      '(incremental: the changed rows). Medians of interleaved runs; single times are noise.';
    const lines = [];
    for (const t of Object.values(c.ratios?.targets ?? {})) {
      let bound;
      let value;
      if (t.le != null) {
        bound = `<= ${t.le}`;
        value = rx(t.value);
      } else if (t.ltSec != null) {
        bound = `< ${t.ltSec} s${c.quick ? ` at 10M rows; this run: ${c.params.verifyRows.toLocaleString('en')}` : ''}`;
        value = t.value == null ? '-' : `${f2(t.value)} s`;
      } else {
        bound = 'every run exit 1 and the key named';
        value = t.value == null ? '-' : `${t.value} runs`;
      }
      const met = t.met == null ? 'n/a' : t.met ? 'met' : 'NOT met';
      lines.push(`${t.what}: ${value} (target ${bound}: ${met})`);
    }
    if (c.ratios?.incrementalVsPrepare != null) {
      lines.push(
        `also: incremental / tongbu's own --cursor full copy (untimed preparation) ` +
          `${rx(c.ratios.incrementalVsPrepare)}`,
      );
    }
    text += `\n\nTargets (issue 5):\n  ${lines.join('\n  ')}`;
    if (c.error) notes.push(`case stopped: ${c.error}`);
    if (notes.length) text += `\n\nFailures (last failing run):\n  ${notes.join('\n  ')}`;
    out.push(text);
  }
  return out.join('\n\n');
}
