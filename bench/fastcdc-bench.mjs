// FastCDC throughput: median GB/s over 5 runs on 256 MiB of random data,
// default chunker options. Build first: npx tsc -p tsconfig.build.json
import { randomFillSync } from 'node:crypto';
import { chunkBuffer, DEFAULT_CHUNKER } from '../dist/core/fastcdc.js';

const SIZE = 256 * 1024 * 1024;
const RUNS = 5;

const data = randomFillSync(new Uint8Array(SIZE));
chunkBuffer(data.subarray(0, 32 * 1024 * 1024)); // warm up the JIT

const rates = [];
let chunks = 0;
for (let run = 0; run < RUNS; run++) {
  const t0 = process.hrtime.bigint();
  chunks = chunkBuffer(data, DEFAULT_CHUNKER).length;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  rates.push(SIZE / seconds / 1e9);
}
rates.sort((a, b) => a - b);
const median = rates[Math.floor(RUNS / 2)];
const { minSize, avgSize, maxSize } = DEFAULT_CHUNKER;
console.log(
  `fastcdc min=${minSize} avg=${avgSize} max=${maxSize}: ${chunks} chunks, ` +
    `mean ${(SIZE / chunks / 1048576).toFixed(2)} MiB; ` +
    `median ${median.toFixed(2)} GB/s over ${RUNS} runs ` +
    `(runs: ${rates.map((r) => r.toFixed(2)).join(', ')})`,
);
