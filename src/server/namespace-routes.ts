/**
 * Routes under /v1/ns/<namespace>: refs, commits, log, entries, diff and file
 * downloads (with Range, so plain curl works).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { TongbuError } from '../core/errors.js';
import { isContentHash, type ContentHash } from '../core/hash.js';
import { validateKey } from '../core/key.js';
import { MAX_JSON_BYTES } from '../endpoints/tongbu/protocol.js';
import { validateNamespace, validateRefName, type Commit } from '../store/commit.js';
import { decodeManifest, type ChunkRef } from '../store/manifest.js';
import { iterateTree } from '../store/prolly-tree.js';
import type { EntryChange, Store } from '../store/store.js';
import { fromTreeValue, type StoredEntry } from '../store/stored-entry.js';
import { requireAccess, type Principal } from './auth.js';
import { optionalString, readJson, sendJson } from './http-util.js';

export interface NamespaceRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly principal: Principal;
  readonly namespace: string;
  /** Path segments after the namespace, percent-decoded. */
  readonly rest: readonly string[];
  /**
   * On a cluster node: runs a commit as one replicated write and reports how
   * many replicas its objects reached.
   */
  readonly replicate?: <T>(fn: () => Promise<T>) => Promise<{ result: T; replication: unknown }>;
}

const PAGE_DEFAULT = 10_000;
const PAGE_MAX = 100_000;
const LOG_MAX = 1_000;

export async function handleNamespace(store: Store, r: NamespaceRequest): Promise<void> {
  const { req, res, url, principal, rest } = r;
  const ns = validateNamespace(r.namespace);
  const [what, ...tail] = rest;
  const method = req.method ?? 'GET';
  const ref = url.searchParams.get('ref') ?? undefined;

  if (what === 'commits' && tail.length === 0 && method === 'POST') {
    requireAccess(principal, 'write', ns);
    const body = await readJson(req, MAX_JSON_BYTES);
    const request = { namespace: ns, ...parseCommitBody(body) };
    if (r.replicate) {
      const { result, replication } = await r.replicate(() => store.commit(request));
      sendJson(res, 200, { ...result, replication });
    } else {
      sendJson(res, 200, await store.commit(request));
    }
    return;
  }
  if (what === 'refs' && method === 'POST' && tail.length === 2) {
    requireAccess(principal, 'write', ns);
    const kind = tail[0] === 'tags' ? 'tags' : tail[0] === 'heads' ? 'heads' : undefined;
    if (!kind) throw new TongbuError('BAD_ARGUMENT', 'refs are heads/NAME or tags/NAME');
    const name = `${kind}/${validateRefName(tail[1]!)}`;
    const body = await readJson(req, 64 * 1024);
    const commit = hashField(body, 'commit');
    const expected = body['expected'] === null ? undefined : hashField(body, 'expected', true);
    if (
      !(await store.catalog.compareAndSwapRef(ns, name, expected, await checkCommit(store, commit)))
    ) {
      const current = await store.catalog.getRef(ns, name);
      throw new TongbuError(
        'CONFLICT',
        `${ns} ${name} is at ${current?.commit ?? 'nothing'}, not ${expected ?? 'nothing'}`,
        {
          data: { namespace: ns, ref: name, current: current?.commit ?? null },
        },
      );
    }
    sendJson(res, 200, { namespace: ns, ref: name, commit });
    return;
  }
  if (method !== 'GET' && method !== 'HEAD') {
    throw new TongbuError('BAD_ARGUMENT', `${method} ${url.pathname} is not a route`);
  }
  requireAccess(principal, 'read', ns);

  if (what === 'refs' && tail.length === 0) {
    const refs = await store.catalog.listRefs(ns);
    // A namespace exists from its first commit on: no refs, no namespace (as for log and entries).
    if (refs.length === 0) {
      throw new TongbuError('NOT_FOUND', `no namespace ${ns}`, { data: { namespace: ns } });
    }
    sendJson(res, 200, { refs });
  } else if (what === 'refs') {
    const commit = await store.resolve(ns, tail.join('/'));
    sendJson(res, 200, { namespace: ns, ref: tail.join('/'), commit });
  } else if (what === 'commits' && tail.length === 1) {
    const hash = await store.resolve(ns, tail[0]);
    sendJson(res, 200, { hash, ...(await store.readCommit(hash)) });
  } else if (what === 'log') {
    const limit = clampInt(url.searchParams.get('limit'), 100, LOG_MAX);
    const commits = [];
    let next: ContentHash | undefined = await store.resolve(ns, ref);
    while (next && commits.length < limit) {
      // Older history may have been removed by a gc: the log ends there.
      const c: Commit | undefined =
        commits.length === 0
          ? await store.readCommit(next)
          : await store.readCommit(next).catch(() => undefined);
      if (!c) break;
      commits.push({ hash: next, ...c });
      next = c.parents[0];
    }
    const tags = await store.catalog.listRefs(ns, 'tags/');
    sendJson(res, 200, { commits, tags });
  } else if (what === 'entries') {
    await listEntries(store, r, ns, ref);
  } else if (what === 'entry') {
    const commit = await store.resolve(ns, ref);
    const key = validateKey(tail.join('/'));
    const entry = await store.getEntry((await store.readCommit(commit)).root, key);
    if (!entry) throw new TongbuError('NOT_FOUND', `${ns}: no entry ${key}`, { data: { key } });
    sendJson(res, 200, { commit, key, ...entry, ...(await manifestOf(store, entry)) });
  } else if (what === 'diff') {
    const from = await store.resolve(ns, url.searchParams.get('from') ?? '');
    const to = await store.resolve(ns, url.searchParams.get('to') ?? undefined);
    const [a, b] = await Promise.all([store.readCommit(from), store.readCommit(to)]);
    const changes = [];
    for await (const batch of store.diff(a.root, b.root)) changes.push(...batch);
    sendJson(res, 200, { from, to, changes });
  } else if (what === 'files' && tail.length > 0) {
    const commit = await store.resolve(ns, ref);
    const key = validateKey(tail.join('/'));
    const entry = await store.getEntry((await store.readCommit(commit)).root, key);
    if (!entry || entry.kind !== 'file') {
      throw new TongbuError('NOT_FOUND', `${ns}: no file ${key}`, { data: { key } });
    }
    await sendFile(store, req, res, entry);
  } else {
    throw new TongbuError('NOT_FOUND', `no route ${url.pathname}`);
  }
}

function parseCommitBody(body: Record<string, unknown>): {
  base?: ContentHash;
  changes: EntryChange[];
  message?: string;
  tag?: string;
  branch?: string;
} {
  const base = body['base'] === null ? undefined : hashField(body, 'base', true);
  const raw = body['changes'];
  if (!Array.isArray(raw)) throw new TongbuError('BAD_ARGUMENT', 'changes must be an array');
  const changes = raw.map((c: unknown): EntryChange => {
    const change = c as { key?: unknown; entry?: unknown } | null;
    if (typeof change?.key !== 'string')
      throw new TongbuError('BAD_ARGUMENT', 'a change needs a key');
    const key = validateKey(change.key);
    return change.entry === null || change.entry === undefined
      ? { key }
      : { key, entry: change.entry as StoredEntry };
  });
  const message = optionalString(body, 'message');
  const tag = optionalString(body, 'tag');
  const branch = optionalString(body, 'branch');
  return {
    changes,
    ...(base ? { base } : {}),
    ...(message !== undefined ? { message } : {}),
    ...(tag !== undefined ? { tag } : {}),
    ...(branch !== undefined ? { branch } : {}),
  };
}

function hashField(body: Record<string, unknown>, field: string, optional = false): ContentHash {
  const v = body[field];
  if (v === undefined && optional) return undefined as unknown as ContentHash;
  if (typeof v !== 'string' || !isContentHash(v)) {
    throw new TongbuError('BAD_ARGUMENT', `${field} must be a content hash`);
  }
  return v;
}

async function checkCommit(store: Store, hash: ContentHash): Promise<ContentHash> {
  await store.readCommit(hash);
  return hash;
}

function clampInt(text: string | null, fallback: number, max: number): number {
  const n = text === null ? fallback : Number(text);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new TongbuError('BAD_ARGUMENT', `bad limit ${text}`);
  return Math.min(n, max);
}

async function listEntries(
  store: Store,
  r: NamespaceRequest,
  ns: string,
  ref?: string,
): Promise<void> {
  const commit = await store.resolve(ns, ref);
  const root = (await store.readCommit(commit)).root;
  const prefix = r.url.searchParams.get('prefix') ?? '';
  const after = r.url.searchParams.get('after') ?? undefined;
  const limit = clampInt(r.url.searchParams.get('limit'), PAGE_DEFAULT, PAGE_MAX);
  const entries: (StoredEntry & { key: string })[] = [];
  let next: string | undefined;
  for await (const batch of iterateTree(store.chunks, root, {
    ...(prefix ? { prefix } : {}),
    ...(after !== undefined ? { after } : {}),
  })) {
    for (const item of batch) {
      if (entries.length === limit) {
        next = entries[entries.length - 1]!.key;
        break;
      }
      entries.push({ key: item.key, ...fromTreeValue(item.value) });
    }
    if (next !== undefined) break;
  }
  // Later pages name the commit, so a paged listing is one consistent snapshot.
  sendJson(r.res, 200, { commit, entries, next: next ?? null });
}

async function chunksOf(store: Store, entry: StoredEntry): Promise<ChunkRef[]> {
  if (!entry.data || !entry.parts) return [];
  if (entry.parts === 1) return [{ hash: entry.data, size: entry.size }];
  return decodeManifest(await store.chunks.get(entry.data));
}

async function manifestOf(store: Store, entry: StoredEntry): Promise<{ chunks?: ChunkRef[] }> {
  return entry.kind === 'file' ? { chunks: await chunksOf(store, entry) } : {};
}

/** Streams a file, or the byte range asked for (one range: `bytes=a-b`, `a-`, `-n`). */
async function sendFile(
  store: Store,
  req: IncomingMessage,
  res: ServerResponse,
  entry: StoredEntry,
): Promise<void> {
  const size = entry.size;
  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = req.headers.range;
  if (range) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    if (m && (m[1] !== '' || m[2] !== '')) {
      if (m[1] === '') start = Math.max(0, size - Number(m[2]));
      else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(end, Number(m[2]));
      }
      if (start >= size || start > end) {
        res.writeHead(416, { 'content-range': `bytes */${size}` });
        res.end();
        return;
      }
      status = 206;
    }
  }
  const length = size === 0 ? 0 : end - start + 1;
  res.writeHead(status, {
    'content-type': 'application/octet-stream',
    'content-length': length,
    'accept-ranges': 'bytes',
    etag: `"${entry.hash ?? ''}"`,
    'last-modified': new Date(entry.mtimeMs).toUTCString(),
    ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
  });
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  let offset = 0;
  for (const c of await chunksOf(store, entry)) {
    const chunkEnd = offset + c.size;
    if (chunkEnd > start && offset <= end) {
      const bytes = await store.chunks.get(c.hash);
      const from = Math.max(0, start - offset);
      const to = Math.min(c.size, end - offset + 1);
      if (!res.write(bytes.subarray(from, to))) await drained(res);
      if (res.destroyed) return;
    }
    offset = chunkEnd;
    if (offset > end) break;
  }
  res.end();
}

/** Resolves when the response can take more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
