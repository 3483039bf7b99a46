/**
 * The etcd tests run against: 127.0.0.1:2379 unless TONGBU_TEST_ETCD_URL
 * names another (`etcd://HOST:PORT[,HOST:PORT…]`). Each test works under a
 * key prefix of its own, so test files and runs share one etcd.
 *
 * A test file calls `await etcdAvailable()` at load time and uses
 * `describe.skipIf(!ok)`: without etcd the tests say they are skipped and
 * why; with TONGBU_REQUIRE_SERVICES=1 (CI) a missing etcd throws instead.
 */
import { serviceAvailable } from './databases.js';

export const ETCD_URL = process.env['TONGBU_TEST_ETCD_URL'] ?? 'etcd://127.0.0.1:2379';

export function etcdAvailable(): Promise<boolean> {
  const first = ETCD_URL.replace(/^[a-z]+:\/\//i, '').split(',')[0] ?? '';
  const [host = '127.0.0.1', port = '2379'] = first.split(':');
  return serviceAvailable('etcd', host, Number(port));
}

/** A key prefix unique to this process and call, e.g. `/tongbu-test/4711-lx3k-0/`. */
let seq = 0;
export function uniqueEtcdPrefix(): string {
  return `/tongbu-test/${process.pid}-${Date.now().toString(36)}-${seq++}/`;
}
