// Bun (npm package `bun`): the built package imported by its own name, CPU path with
// threads through Bun's node:worker_threads over a shared WebAssembly.Memory.
import { describe, expect, it } from 'vitest';
import { FIXTURES, ROOT, checkResults, checkZeroCopy, parseReport, runCommand } from './harness.js';

const BUN = `${ROOT}node_modules/.bin/bun`;

describe('bun', () => {
  it('CPU path, 2 worker_threads', async () => {
    const report = parseReport('bun', await runCommand(BUN, [`${FIXTURES}smoke.mjs`, '2'], { env: { ...process.env, NO_COLOR: '1' } }));
    expect(report.runtime).toBe('bun');
    expect(report.resolved).toBe(new URL('dist/index.js', `file://${ROOT}`).href);
    const best = report.variants[0];
    for (const x of report.results) expect(x.detail).toBe(`wasm ${best}, 2 threads`);
    expect(report.webWorkers).toEqual([]); // worker_threads, not web Workers
    checkResults(`bun ${report.version}`, report.results);
    checkZeroCopy(`bun ${report.version}`, report.zeroCopy, true);
  });
});
