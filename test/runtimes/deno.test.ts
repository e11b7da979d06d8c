// Deno (npm package `deno`): the built package imported by its own name, CPU path with
// threads through Deno's node:worker_threads (built on its module Workers, and unlike them
// able to unref() idle workers, so a forgotten dispose() cannot keep Deno running) over a
// shared WebAssembly.Memory; only read access to the project is granted.
import { describe, expect, it } from 'vitest';
import { FIXTURES, ROOT, checkResults, checkZeroCopy, parseReport, runCommand } from './harness.js';

const DENO = `${ROOT}node_modules/.bin/deno`;

describe('deno', () => {
  it('CPU path, 2 worker threads', async () => {
    const r = await runCommand(DENO, ['run', '--no-lock', `--allow-read=${ROOT}`, `${FIXTURES}smoke.mjs`, '2'], {
      env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
    });
    const report = parseReport('deno', r);
    expect(report.runtime).toBe('deno');
    expect(report.resolved).toBe(new URL('dist/index.js', `file://${ROOT}`).href);
    const best = report.variants[0];
    for (const x of report.results) expect(x.detail).toBe(`wasm ${best}, 2 threads`);
    expect(report.webWorkers).toEqual([]); // node:worker_threads, not the global Worker
    checkResults(`deno ${report.version}`, report.results);
    checkZeroCopy(`deno ${report.version}`, report.zeroCopy, true);
  });
});
