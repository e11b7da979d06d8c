// Short soak (scripts/soak.mjs --calls 500, run as its own process): mixed shapes on every
// CPU path, long-lived and short-lived instances; memory, workers and RSS stay bounded,
// results checked against the reference, and after dispose() no engine or worker is left
// and the process ends by itself. The 10,000-call run is `node scripts/soak.mjs`.
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';

describe('soak', () => {
  it('500 mixed calls: bounded memory/workers/RSS, right results, everything released, the process exits', async () => {
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(process.execPath, ['scripts/soak.mjs', '--calls', '500', '--every', '50', '--seed', '7', '--quiet'], { timeout: 90_000 }, (_e, stdout, stderr) =>
        resolve({ code: child.exitCode, stdout, stderr }));
    });
    expect(code, `soak failed or did not exit by itself:\n${stdout}\n${stderr}`).toBe(0);
    const summary = JSON.parse(stdout.slice(stdout.indexOf('{\n')));
    expect(summary.problems).toEqual([]);
    expect(summary.checkedAgainstReference).toBe(10);
    expect(summary.maxWorkersAlive).toBeLessThanOrEqual(9);
    expect(summary.maxWasmMiB).toBeLessThan(64);
    expect(summary.afterDispose).toMatchObject({ engines: 0, workersAlive: 0, wasmMiB: 0 });
  });
});
