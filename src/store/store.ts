/**
 * A versioned store: namespaces whose states are prolly trees in the chunk
 * store, commits that change any number of entries atomically, and refs in
 * the catalog moved by compare-and-swap. Two writers to one namespace both
 * land when their changes are disjoint (the later one is merged onto the new
 * head); a true conflict fails with the keys named.
 */
import { TongbuError } from '../core/errors.js';
import { isContentHash, type ContentHash } from '../core/hash.js';
import type { Catalog, RefRecord } from './catalog.js';
import type { ChunkStore } from './chunk-store.js';
import {
  decodeCommit,
  encodeCommit,
  MAIN_REF,
  refCandidates,
  validateNamespace,
  validateRefName,
  type Commit,
} from './commit.js';
import { decodeManifest } from './manifest.js';
import { canonicalJson, keepDecodedNodes } from './prolly-node.js';
import {
  applyChanges,
  diffTrees,
  emptyTree,
  getItem,
  treeCount,
  type TreeChange,
  type TreeDiff,
} from './prolly-tree.js';
import {
  fromTreeValue,
  toTreeValue,
  validateStoredEntry,
  type StoredEntry,
} from './stored-entry.js';

export interface EntryChange {
  readonly key: string;
  /** undefined deletes the key. */
  readonly entry?: StoredEntry;
}

export interface CommitRequest {
  readonly namespace: string;
  /** The commit the writer started from; undefined for a new namespace. */
  readonly base?: ContentHash;
  readonly changes: readonly EntryChange[];
  readonly message?: string;
  /** Also point `tags/<tag>` at the new commit. */
  readonly tag?: string;
  /** The branch to move; `main` by default. */
  readonly branch?: string;
}

export interface CommitResult {
  readonly commit: ContentHash;
  readonly root: ContentHash;
  readonly parent: ContentHash | undefined;
  readonly entries: number;
  /** The head had moved since `base`: the change was merged onto it. */
  readonly merged: boolean;
  readonly tag?: string;
}

/** Largest number of conflicting keys named in an error. */
const CONFLICT_KEYS_SHOWN = 100;
const MAX_CAS_ATTEMPTS = 50;
/** Branch heads this process remembers from its own commits (a guess that CAS checks). */
const KNOWN_HEADS = 10_000;
const CACHED_COMMITS = 1024;

export class Store {
  readonly chunks: ChunkStore;
  readonly catalog: Catalog;
  private readonly commitQueues = new Map<string, Promise<unknown>>();
  /**
   * The head each branch had after this process's last commit to it. A commit starts from it instead of reading the catalog; when
   * another writer moved the ref since, the compare-and-swap fails and the
   * retry reads it.
   */
  private readonly knownHeads = new Map<string, ContentHash>();
  private readonly commits = new Map<ContentHash, Commit>();

  constructor(chunks: ChunkStore, catalog: Catalog) {
    this.chunks = chunks;
    this.catalog = catalog;
    keepDecodedNodes(chunks);
  }

  /** A commit, verified and decoded; the recently read ones are kept (commits are immutable). */
  async readCommit(hash: ContentHash): Promise<Commit> {
    const cached = this.commits.get(hash);
    if (cached) return cached;
    const commit = decodeCommit(await this.chunks.get(hash), hash);
    this.commits.set(hash, commit);
    if (this.commits.size > CACHED_COMMITS) this.commits.delete(this.commits.keys().next().value!);
    return commit;
  }

  /**
   * The commit a spec names in a namespace: undefined or '' for the main
   * head, a tag or branch name, `tags/x`/`heads/x`, or a commit hash.
   * NOT_FOUND names the namespace or ref when there is none.
   */
  async resolve(namespace: string, spec?: string): Promise<ContentHash> {
    validateNamespace(namespace);
    if (spec && isContentHash(spec)) {
      await this.readCommit(spec);
      return spec;
    }
    for (const name of refCandidates(spec || MAIN_REF)) {
      const ref = await this.catalog.getRef(namespace, name);
      if (ref) return ref.commit;
    }
    if (!spec && (await this.catalog.listRefs(namespace)).length === 0) {
      throw new TongbuError('NOT_FOUND', `no namespace ${JSON.stringify(namespace)}`, {
        data: { namespace },
      });
    }
    throw new TongbuError(
      'NOT_FOUND',
      `no ref ${JSON.stringify(spec ?? MAIN_REF)} in ${namespace}`,
      {
        data: { namespace, ref: spec ?? MAIN_REF },
      },
    );
  }

  /** The head of a branch, or undefined when the namespace has none. */
  async head(namespace: string, branch = 'main'): Promise<RefRecord | undefined> {
    return this.catalog.getRef(validateNamespace(namespace), `heads/${validateRefName(branch)}`);
  }

  async getEntry(root: ContentHash, key: string): Promise<StoredEntry | undefined> {
    const v = await getItem(this.chunks, root, key);
    return v ? fromTreeValue(v) : undefined;
  }

  diff(from: ContentHash, to: ContentHash): AsyncIterable<TreeDiff[]> {
    return diffTrees(this.chunks, from, to);
  }

  /** Commits are serialized per namespace within this process; CAS orders processes. */
  commit(request: CommitRequest): Promise<CommitResult> {
    const ns = validateNamespace(request.namespace);
    const previous = this.commitQueues.get(ns) ?? Promise.resolve();
    const next = previous.then(
      () => this.commitNow(request),
      () => this.commitNow(request),
    );
    this.commitQueues.set(ns, next);
    return next;
  }

  private async commitNow(request: CommitRequest): Promise<CommitResult> {
    const { namespace, base } = request;
    const branch = `heads/${validateRefName(request.branch ?? 'main')}`;
    if (request.tag !== undefined) validateRefName(request.tag);
    const changes = this.checkChanges(request.changes);
    await this.checkContent(changes);
    const baseRoot = base ? (await this.readCommit(base)).root : undefined;

    const headKey = `${namespace}\0${branch}`;
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      // A wrong guess (known or stale head) costs only a failed CAS; the retry reads the current one.
      const known = attempt === 0 ? this.knownHeads.get(headKey) : undefined;
      const headHash =
        known ??
        (
          await this.catalog.getRef(
            namespace,
            branch,
            attempt === 0 ? { consistency: 'stale' } : {},
          )
        )?.commit;
      const head = headHash !== undefined ? { commit: headHash } : undefined;
      const headCommit = head ? await this.readCommit(head.commit) : undefined;
      const headRoot = headCommit?.root ?? (await emptyTree(this.chunks));
      const merged = head !== undefined && head.commit !== base;
      if (merged) {
        await this.checkConflicts(baseRoot ?? (await emptyTree(this.chunks)), headRoot, changes);
      }
      const root = await applyChanges(this.chunks, headRoot, changes);
      const entries = await treeCount(this.chunks, root);
      const commit = await this.chunks.put(
        encodeCommit({
          root,
          parents: head ? [head.commit] : [],
          timeMs: Date.now(),
          message: request.message ?? '',
          entries,
        }),
      );
      // Everything the commit references is durable before the ref moves.
      await this.chunks.sync();
      if (!(await this.catalog.compareAndSwapRef(namespace, branch, head?.commit, commit))) {
        this.knownHeads.delete(headKey);
        continue;
      }
      this.rememberHead(headKey, commit);
      if (request.tag !== undefined) await this.setTag(namespace, request.tag, commit);
      return {
        commit,
        root,
        parent: head?.commit,
        entries,
        merged,
        ...(request.tag !== undefined ? { tag: request.tag } : {}),
      };
    }
    throw new TongbuError('CONFLICT', `${namespace}: the head kept moving; commit not applied`, {
      retryable: true,
    });
  }

  private rememberHead(headKey: string, commit: ContentHash): void {
    this.knownHeads.delete(headKey);
    this.knownHeads.set(headKey, commit);
    if (this.knownHeads.size > KNOWN_HEADS) {
      const oldest = this.knownHeads.keys().next().value;
      if (oldest !== undefined) this.knownHeads.delete(oldest);
    }
  }

  /** Points `tags/<tag>` at a commit; CONFLICT when it names another one. */
  async setTag(namespace: string, tag: string, commit: ContentHash): Promise<void> {
    const name = `tags/${validateRefName(tag)}`;
    const current = await this.catalog.getRef(namespace, name);
    if (current?.commit === commit) return;
    if (current || !(await this.catalog.compareAndSwapRef(namespace, name, undefined, commit))) {
      throw new TongbuError('CONFLICT', `tag ${tag} already exists in ${namespace}`, {
        data: { namespace, tag },
      });
    }
  }

  /** Moves a ref to a commit (rollback), from `expected` when given. */
  async moveRef(
    namespace: string,
    name: string,
    commit: ContentHash,
    expected?: ContentHash,
  ): Promise<void> {
    const [ref] = refCandidates(
      name.startsWith('tags/') ? name : name.replace(/^(?!heads\/)/, 'heads/'),
    );
    await this.readCommit(commit);
    this.knownHeads.delete(`${namespace}\0${ref!}`);
    const current = expected ?? (await this.catalog.getRef(namespace, ref!))?.commit;
    if (!(await this.catalog.compareAndSwapRef(namespace, ref!, current, commit))) {
      throw new TongbuError('CONFLICT', `${namespace} ${ref}: moved concurrently`, {
        data: { namespace, ref },
      });
    }
  }

  private checkChanges(changes: readonly EntryChange[]): TreeChange[] {
    const seen = new Set<string>();
    return changes.map((c) => {
      if (seen.has(c.key)) {
        throw new TongbuError('BAD_ARGUMENT', `key ${JSON.stringify(c.key)} changed twice`, {
          data: { key: c.key },
        });
      }
      seen.add(c.key);
      return {
        key: c.key,
        value: c.entry ? toTreeValue(validateStoredEntry(c.key, c.entry)) : null,
      };
    });
  }

  /** Every chunk and manifest a new entry names must be stored already. */
  private async checkContent(changes: readonly TreeChange[]): Promise<void> {
    // Two lookups for the whole change set: the entries' data, then the chunks of their manifests.
    const files = new Map<ContentHash, { key: string; entry: StoredEntry }>();
    for (const c of changes) {
      if (!c.value) continue;
      const e = fromTreeValue(c.value);
      if (e.kind === 'file' && e.data) files.set(e.data, { key: c.key, entry: e });
    }
    const missing = (key: string, hash: ContentHash): TongbuError =>
      new TongbuError('BAD_ARGUMENT', `entry ${JSON.stringify(key)} names missing chunk ${hash}`, {
        data: { key, hash },
      });
    const [absentData] = await this.absent([...files.keys()]);
    if (absentData) throw missing(files.get(absentData)!.key, absentData);
    const chunkOwners = new Map<ContentHash, string>();
    for (const [data, { key, entry }] of files) {
      if (entry.parts === 1) continue;
      const manifest = decodeManifest(await this.chunks.get(data));
      const total = manifest.reduce((n, m) => n + m.size, 0);
      if (manifest.length !== entry.parts || total !== entry.size) {
        throw new TongbuError(
          'BAD_ARGUMENT',
          `entry ${JSON.stringify(key)}: manifest does not match size`,
          {
            data: { key },
          },
        );
      }
      for (const m of manifest) chunkOwners.set(m.hash, key);
    }
    const [absentChunk] = await this.absent([...chunkOwners.keys()]);
    if (absentChunk) throw missing(chunkOwners.get(absentChunk)!, absentChunk);
  }

  /** Presence only: uploads and `missing` answers touched these already, for gc. */
  private async absent(hashes: readonly ContentHash[]): Promise<ContentHash[]> {
    if (this.chunks.missingAnywhere) return this.chunks.missingAnywhere(hashes);
    if (this.chunks.lacking) return this.chunks.lacking(hashes);
    const here = await Promise.all(hashes.map((h) => this.chunks.has(h)));
    return hashes.filter((_, i) => !here[i]);
  }

  /** Keys both writers changed, to different values, fail the commit. */
  private async checkConflicts(
    baseRoot: ContentHash,
    headRoot: ContentHash,
    changes: readonly TreeChange[],
  ): Promise<void> {
    const ours = new Map(changes.map((c) => [c.key, c.value]));
    const conflicts: string[] = [];
    for await (const batch of diffTrees(this.chunks, baseRoot, headRoot)) {
      for (const d of batch) {
        if (!ours.has(d.key)) continue;
        const mine = ours.get(d.key) ?? null;
        const theirs = d.after ?? null;
        if (canonicalJson(mine) !== canonicalJson(theirs)) conflicts.push(d.key);
      }
    }
    if (conflicts.length > 0) {
      const shown = conflicts.slice(0, CONFLICT_KEYS_SHOWN);
      throw new TongbuError(
        'CONFLICT',
        `conflicting changes to ${conflicts.length} key(s): ${shown.map((k) => JSON.stringify(k)).join(', ')}`,
        { data: { keys: shown, count: conflicts.length } },
      );
    }
  }
}
