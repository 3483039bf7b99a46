import * as fs from 'node:fs';
import { runChunkStoreSuite } from './chunk-store-suite.js';
import { FileChunkStore } from './file-chunk-store.js';
import { PackChunkStore } from './pack-chunk-store.js';

function flipByte(path: string, offset: number): void {
  const fd = fs.openSync(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, offset);
    byte[0] = byte[0]! ^ 0xff;
    fs.writeSync(fd, byte, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

runChunkStoreSuite('FileChunkStore', {
  open: (dir) => FileChunkStore.open(dir),
  corrupt: (store, hash) => flipByte(store.path(hash), 0),
});

runChunkStoreSuite('PackChunkStore', {
  open: (dir) => PackChunkStore.open(dir),
  corrupt: (store, hash) => {
    const at = store.location(hash);
    if (!at) throw new Error(`no ${hash} to corrupt`);
    flipByte(at.path, at.offset + Math.floor(at.length / 2));
  },
});
