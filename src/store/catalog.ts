/**
 * The catalog keeps the small mutable records of a store: refs (which commit
 * a branch or tag names), and access tokens. Trees, commits and manifests
 * live in the chunk store. One interface, implemented on SQLite (embedded,
 * several processes of one machine may share it) and later on etcd.
 */
import type { ContentHash } from '../core/hash.js';

export interface RefRecord {
  readonly namespace: string;
  /** `heads/main`, `tags/step-1200`. */
  readonly name: string;
  readonly commit: ContentHash;
  /** Increases with every change of this ref. */
  readonly version: number;
}

export interface TokenRecord {
  readonly id: string;
  /** sha256 of the secret; the secret itself is never stored. */
  readonly secretHash: string;
  /** `pattern:read|write|admin`, e.g. `llama/*:write`. */
  readonly scopes: readonly string[];
  readonly label: string;
  readonly createdMs: number;
}

export interface Catalog {
  getRef(namespace: string, name: string): Promise<RefRecord | undefined>;
  /**
   * Moves a ref from `expected` (undefined: the ref must not exist) to
   * `next` (undefined: delete it), atomically. Returns false, changing
   * nothing, when the ref is not at `expected`.
   */
  compareAndSwapRef(
    namespace: string,
    name: string,
    expected: ContentHash | undefined,
    next: ContentHash | undefined,
  ): Promise<boolean>;
  /** Refs of a namespace whose names start with `prefix`, by name. */
  listRefs(namespace: string, prefix?: string): Promise<RefRecord[]>;
  /** Namespaces with at least one ref, sorted. */
  listNamespaces(): Promise<string[]>;

  putToken(token: TokenRecord): Promise<void>;
  findToken(secretHash: string): Promise<TokenRecord | undefined>;
  listTokens(): Promise<TokenRecord[]>;
  removeToken(id: string): Promise<boolean>;

  close(): Promise<void>;
}
