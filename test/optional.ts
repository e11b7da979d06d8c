// Optional suites: those that need something `npm install` does not bring — a Vulkan driver
// for the WebGPU suites, Debian's chromium for the browser suite. Without it they skip, and
// record why; the run then ends with one line naming what was skipped and how to enable it
// (test/global-setup.ts). SPARSE_ATTENTION_CI=1 (set by .ci/run) makes every missing piece a
// failure instead; SPARSE_ATTENTION_REQUIRE_GPU=1 / SPARSE_ATTENTION_REQUIRE_BROWSER=1 one of them.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A folder the skipping suites write to; read at the end of the run (test/global-setup.ts). */
    skipLog: string;
  }
}

const flag = (name: string) => process.env[name] === '1';
export const CI = flag('SPARSE_ATTENTION_CI');
export const REQUIRE_GPU = CI || flag('SPARSE_ATTENTION_REQUIRE_GPU');
export const REQUIRE_BROWSER = CI || flag('SPARSE_ATTENTION_REQUIRE_BROWSER');
/**
 * The whole GPU kernel-variant table and the program texts a hardware GPU compiles (chunk-pair
 * loops unrolled): on lavapipe each is a pipeline to compile, minutes on a fresh machine, so
 * `npm test` runs the variants the automatic choice uses and CI runs them all.
 */
export const GPU_FULL = CI || flag('SPARSE_ATTENTION_GPU_FULL');
export const GPU_FULL_ENABLE = 'set SPARSE_ATTENTION_GPU_FULL=1';

export interface SkipRecord {
  /** What is skipped, e.g. 'WebGPU suites'. Records with the same `what` are merged. */
  what: string;
  /** Why, e.g. 'no WebGPU adapter'. */
  why: string;
  /** The command that enables it. */
  enable: string;
}

export const GPU_ENABLE = 'install a Vulkan driver (Debian: apt-get install -t bookworm-backports mesa-vulkan-drivers, i.e. lavapipe)';
export const BROWSER_ENABLE = 'install chromium (Debian: apt-get install chromium) or set CHROMIUM_PATH';

/** Records a skipped optional suite for the end-of-run line; prints it where the run has no such line. */
export function recordSkip(record: SkipRecord): void {
  let dir: string | undefined;
  try {
    dir = inject('skipLog');
  } catch {
    dir = undefined;
  }
  if (dir) appendFileSync(join(dir, `${process.pid}.jsonl`), `${JSON.stringify(record)}\n`);
  else console.log(`Skipped: ${record.what} (${record.why}). To run: ${record.enable}.`);
}
