// Deno (npm package `deno`): the built package imported by its own name, CPU path with
// threads through module Workers (`new Worker(url, { type: 'module' })`) over a shared
// WebAssembly.Memory; only read access to the project is granted.
import { describe, expect, it } from 'vitest';
import { FIXTURES, ROOT, checkResults, checkZeroCopy, parseReport, runCommand } from './harness.js';

const DENO = `${ROOT}node_modules/.bin/deno`;

describe('deno', () => {
  it('CPU path, 2 module workers', async () => {
    const r = await runCommand(DENO, ['run', '--no-lock', `--allow-read=${ROOT}`, `${FIXTURES}smoke.mjs`, '2'], {
      env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
    });
    const report = parseReport('deno', r);
    expect(report.runtime).toBe('deno');
    expect(report.resolved).toBe(new URL('dist/index.js', `file://${ROOT}`).href);
    const best = report.variants[0];
    for (const x of report.results) expect(x.detail).toBe(`wasm ${best}, 2 threads`);
    // 2 workers for each of the 4 cases (each case disposes its instance, and so its pool)
    expect(report.webWorkers).toEqual(Array(8).fill('module'));
    checkResults(`deno ${report.version}`, report.results);
    checkZeroCopy(`deno ${report.version}`, report.zeroCopy, true);
  });
});
