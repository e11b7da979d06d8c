// vitest globalSetup: gives the test files a folder to record skipped optional suites in
// (test/optional.ts), and at the end of the run prints one line naming them and the
// commands that enable them, e.g.
//   Skipped: browser suite (no chromium at /usr/bin/chromium (ENOENT)); WebGPU suites (no WebGPU adapter).
//   To run them: install chromium (…); install a Vulkan driver (…); on Debian, sudo bash .ci/setup-system.sh
//   installs what is missing. SPARSE_ATTENTION_CI=1 runs everything and makes a missing piece a failure.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import type { SkipRecord } from './optional.js';

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'sparse-attention-skips-'));
  project.provide('skipLog', dir);
  return () => {
    const skipped = new Map<string, SkipRecord>();
    for (const f of readdirSync(dir)) {
      for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
        if (!line) continue;
        const r = JSON.parse(line) as SkipRecord;
        if (!skipped.has(r.what)) skipped.set(r.what, r);
      }
    }
    rmSync(dir, { recursive: true, force: true });
    if (skipped.size === 0) return;
    const all = [...skipped.values()].sort((a, b) => a.what.localeCompare(b.what));
    const what = all.map((r) => `${r.what} (${r.why})`).join('; ');
    const enable = [...new Set(all.map((r) => r.enable))].join('; ');
    console.log(`\nSkipped: ${what}. To run them: ${enable}; on Debian, sudo bash .ci/setup-system.sh installs what is missing. SPARSE_ATTENTION_CI=1 runs everything and makes a missing piece a failure.`);
  };
}
