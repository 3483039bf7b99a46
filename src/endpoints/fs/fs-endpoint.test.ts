import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEndpointSuite } from '../endpoint-suite.js';
import { FsEndpoint } from './fs-endpoint.js';

runEndpointSuite('fs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'tongbu-fs-suite-'));
  const endpoint = new FsEndpoint(join(dir, 'root'));
  return {
    endpoint,
    cleanup: async () => {
      await endpoint.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
