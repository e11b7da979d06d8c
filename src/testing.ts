// Test-only hooks (fault injection, live counters, the engines alive: see
// src/backends/wasm/faults.ts; the GPU program texts: src/backends/webgpu/program.ts) are
// not part of the API, so no entry exports them. Each bundle
// (dist/index.js, core.js, browser.js, workerd.js: separate esbuild builds, each with its own
// engines) registers its hooks on one global slot, keyed by its own SparseAttention class, so
// a test reaches the hooks that share module state with the class it imports:
//   globalThis[Symbol.for('sparse-attention.testing')].get(SparseAttention)
// (test/internal.ts). Internal, no semver promise.
import { testing } from './backends/wasm/wasm-backend.js';
import { programTesting } from './backends/webgpu/program.js';
import { SparseAttention } from './sparse-attention.js';

/** The CPU path's hooks and the GPU programs' (`programs.fullUnroll`). */
const hooks = { ...testing, programs: programTesting };
export type TestingHooks = typeof hooks;
export const TESTING_SLOT = Symbol.for('sparse-attention.testing');

/** Registers this bundle's hooks on the global slot (a Map from SparseAttention class to hooks). */
export function registerTestingHooks(): void {
  const g = globalThis as { [TESTING_SLOT]?: Map<unknown, TestingHooks> };
  (g[TESTING_SLOT] ??= new Map()).set(SparseAttention, hooks);
}
