import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { storeAddress } from '../core/hash.js';
import { decodeBatch, type ChunkFrame } from '../endpoints/tongbu/protocol.js';
import { PeerClient } from './peer-client.js';

/** A real HTTP peer that answers store requests after `delayMs`, with `status`. */
async function peer(delayMs: number, status: number) {
  const requests: ChunkFrame[][] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      requests.push(decodeBatch(Buffer.concat(parts)));
      setTimeout(() => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(status === 200 ? { stored: 1 } : { code: 'BAD_ARGUMENT' }));
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = new PeerClient(
    { id: 'p', url: `http://127.0.0.1:${port}`, joinedMs: 0 },
    'token',
    5_000,
  );
  return { requests, client, close: () => new Promise((r) => server.close(r)) };
}

function frame(i: number): ChunkFrame {
  const bytes = Buffer.from(`chunk ${i}`);
  return { hash: storeAddress(bytes), bytes };
}

describe('PeerClient.store', () => {
  const open: { client: PeerClient; close: () => Promise<unknown> }[] = [];
  afterEach(async () => {
    for (const p of open.splice(0)) {
      p.client.close();
      await p.close();
    }
  });

  it('coalesces concurrent writes into few requests, and every write reaches the peer', async () => {
    const p = await peer(30, 200);
    open.push(p);
    await Promise.all(Array.from({ length: 40 }, (_, i) => p.client.store([frame(i)])));
    const received = p.requests.flat().map((f) => f.hash);
    expect(received.sort()).toEqual(Array.from({ length: 40 }, (_, i) => frame(i).hash).sort());
    // 4 in flight at once; the other 36 writes wait and go out together.
    expect(p.requests.length).toBeLessThanOrEqual(6);
  });

  it('fails every write of a coalesced request the peer refuses', async () => {
    const p = await peer(20, 400);
    open.push(p);
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => p.client.store([frame(i)])),
    );
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    expect(p.requests.flat()).toHaveLength(12);
  });
});
