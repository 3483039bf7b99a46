/**
 * The etcd tests run against: 127.0.0.1:2379 unless TONGBU_TEST_ETCD_URL
 * names another (`etcd://HOST:PORT[,HOST:PORT…]`). Each test works under a
 * key prefix of its own, so test files and runs share one etcd.
 *
 * A test file calls `await etcdAvailable()` at load time and uses
 * `describe.skipIf(!ok)`: without etcd the tests say they are skipped and
 * why; with TONGBU_REQUIRE_SERVICES=1 (CI) a missing etcd throws instead.
 */
import net from 'node:net';

export const ETCD_URL = process.env['TONGBU_TEST_ETCD_URL'] ?? 'etcd://127.0.0.1:2379';

const requireServices = process.env['TONGBU_REQUIRE_SERVICES'] === '1';

export async function etcdAvailable(): Promise<boolean> {
  const first = ETCD_URL.replace(/^[a-z]+:\/\//i, '').split(',')[0] ?? '';
  const [host = '127.0.0.1', port = '2379'] = first.split(':');
  const ok = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host, port: Number(port) });
    socket.setTimeout(2000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
  if (!ok) {
    const why = `etcd is not reachable at ${host}:${port}`;
    if (requireServices) throw new Error(`${why} (TONGBU_REQUIRE_SERVICES=1)`);
    console.warn(`skipping etcd tests: ${why}`);
  }
  return ok;
}

/** A key prefix unique to this process and call, e.g. `/tongbu-test/4711-lx3k-0/`. */
let seq = 0;
export function uniqueEtcdPrefix(): string {
  return `/tongbu-test/${process.pid}-${Date.now().toString(36)}-${seq++}/`;
}
