/**
 * The manifests this client uploaded, kept in a local directory by address,
 * so that the next upload of a changed file knows the chunks of the version
 * it replaces without asking the node about each (see OldChunks). A file is
 * used only when its bytes hash to its name; the directory is trimmed to a
 * size, least recently used first.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { storeAddress, storeDigestHex, type ContentHash } from '../../core/hash.js';
import { decodeManifest } from '../../store/manifest.js';
import type { OldChunks } from './chunk-pool.js';

/** The directory is trimmed to this many bytes: the manifests of ~450 GiB of files in 64 KiB chunks. */
const KEEP_BYTES = 256 * 1024 * 1024;

export class ManifestCache {
  private readonly dir: string;
  private wrote = false;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** The chunks of the manifest at `address`, if it is here and intact. */
  async get(address: ContentHash): Promise<OldChunks | undefined> {
    const path = join(this.dir, storeDigestHex(address));
    let bytes: Buffer;
    try {
      bytes = await fs.readFile(path);
    } catch {
      return undefined;
    }
    if (storeAddress(bytes) !== address) return undefined;
    const refs = decodeManifest(bytes);
    const sizes = new Uint32Array(refs.length);
    const digests = Buffer.alloc(refs.length * 32);
    refs.forEach((r, i) => {
      sizes[i] = r.size;
      digests.write(storeDigestHex(r.hash), i * 32, 'hex');
    });
    const now = new Date();
    await fs.utimes(path, now, now).catch(() => undefined);
    return { sizes, digests };
  }

  /** Keeps a manifest; a failure to keep it only costs the next upload some work. */
  async put(address: ContentHash, bytes: Buffer): Promise<void> {
    const name = storeDigestHex(address);
    const tmp = join(this.dir, `.${name}.${process.pid}.tmp`);
    try {
      await fs.mkdir(this.dir, { recursive: true });
      await fs.writeFile(tmp, bytes);
      await fs.rename(tmp, join(this.dir, name));
      this.wrote = true;
    } catch {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
    }
  }

  /** Drops a manifest (the node turned out to lack a chunk it names). */
  async forget(address: ContentHash): Promise<void> {
    await fs.rm(join(this.dir, storeDigestHex(address)), { force: true }).catch(() => undefined);
  }

  /** After writes: removes the least recently used files past the size kept. */
  async trim(): Promise<void> {
    if (!this.wrote) return;
    this.wrote = false;
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    const files = await Promise.all(
      names.map(async (name) => {
        const st = await fs.stat(join(this.dir, name)).catch(() => undefined);
        return { name, size: st?.size ?? 0, mtimeMs: st?.mtimeMs ?? 0 };
      }),
    );
    let total = files.reduce((n, f) => n + f.size, 0);
    for (const f of files.sort((a, b) => a.mtimeMs - b.mtimeMs)) {
      if (total <= KEEP_BYTES) break;
      await fs.rm(join(this.dir, f.name), { force: true }).catch(() => undefined);
      total -= f.size;
    }
  }
}
