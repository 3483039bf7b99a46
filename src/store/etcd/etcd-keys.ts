/**
 * Where the etcd catalog keeps what, under its prefix (`/tongbu/` by default):
 *
 *   refs/<namespace>/<name>   {"commit": …}; the ref's version is the key's
 *   tokens/id/<id>            the token record
 *   tokens/secret/<hash>      its id, written in the same transaction
 *   members/<id>              the member record, durable
 *   live/<id>                 held by the member's heartbeat lease
 *   leaders/<role>            the leader's id, held by its lease
 *   settings/<key>            the value
 *
 * Namespaces, ids and roles are percent-encoded (they may hold '/'), so the
 * refs of a namespace are one range and listing namespaces skips from one
 * namespace's range to the next.
 */
import type { IKeyValue } from 'etcd3';
import type { ContentHash } from '../../core/hash.js';

const enc = encodeURIComponent;
export const refKey = (namespace: string, name: string): string => `refs/${enc(namespace)}/${name}`;
export const refValue = (commit: ContentHash): string => JSON.stringify({ commit });
export const commitOf = (kv: IKeyValue): ContentHash =>
  (JSON.parse(kv.value.toString()) as { commit: ContentHash }).commit;
export const tokenKey = (id: string): string => `tokens/id/${enc(id)}`;
export const secretKey = (secretHash: string): string => `tokens/secret/${secretHash}`;
export const memberKey = (id: string): string => `members/${enc(id)}`;
export const liveKey = (id: string): string => `live/${enc(id)}`;
export const leaderKey = (role: string): string => `leaders/${enc(role)}`;
/** etcd leases count whole seconds. */
export const ttlSeconds = (ttlMs: number): number => Math.max(1, Math.ceil(ttlMs / 1000));
/** UTF-8 byte order, as etcd and SQLite sort. */
export const byBytes = (a: string, b: string): number =>
  Buffer.compare(Buffer.from(a), Buffer.from(b));
