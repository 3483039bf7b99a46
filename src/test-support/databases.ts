/**
 * The real database servers tests run against: PostgreSQL on
 * 127.0.0.1:5432 (trust auth, database `test`) and MariaDB on
 * 127.0.0.1:3306 (root, empty password, database `test`). Override with
 * TONGBU_TEST_PG_URL / TONGBU_TEST_MYSQL_URL (no `?table=`).
 *
 * A test file calls `await databaseAvailable('postgres')` at load time and
 * uses `describe.skipIf(!ok)`: without the server the tests say they are
 * skipped and why; with TONGBU_REQUIRE_SERVICES=1 (CI) a missing server
 * throws instead.
 */
import net from 'node:net';

export const PG_URL =
  process.env['TONGBU_TEST_PG_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env['TONGBU_TEST_MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test';

const requireServices = process.env['TONGBU_REQUIRE_SERVICES'] === '1';

/** The table URL for `table` on a test server. */
export function tableUrl(engine: 'postgres' | 'mysql', table: string, extra = ''): string {
  return `${engine === 'postgres' ? PG_URL : MYSQL_URL}?table=${encodeURIComponent(table)}${extra}`;
}

export async function databaseAvailable(engine: 'postgres' | 'mysql'): Promise<boolean> {
  const url = new URL(engine === 'postgres' ? PG_URL : MYSQL_URL);
  const port = Number(url.port || (engine === 'postgres' ? 5432 : 3306));
  return serviceAvailable(engine, url.hostname, port);
}

/**
 * Whether a service answers a TCP connection within 2 s. Without it the
 * caller's tests are skipped with a warning naming the service; with
 * TONGBU_REQUIRE_SERVICES=1 (CI) this throws instead.
 */
export async function serviceAvailable(name: string, host: string, port: number): Promise<boolean> {
  const ok = await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host, port });
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
    const why = `${name} is not reachable at ${host}:${port}`;
    if (requireServices) throw new Error(`${why} (TONGBU_REQUIRE_SERVICES=1)`);
    console.warn(`skipping ${name} tests: ${why}`);
  }
  return ok;
}

/** A table name unique to this process and call, safe in every engine. */
let seq = 0;
export function uniqueTable(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${seq++}`;
}
