#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

// A reader that goes away (`tongbu sync ... | head -1`) ends the output, not
// the run: the work finishes and the exit code is the run's.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

process.exitCode = await main(process.argv.slice(2));
