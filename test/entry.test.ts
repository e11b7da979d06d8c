// The public entries export the API only: the test-only hooks (fault injection, counters,
// engines; src/testing.ts) are reached through a global slot keyed by each bundle's
// SparseAttention class (test/internal.ts), and they share that bundle's module state.
import { describe, expect, it } from 'vitest';
import * as core from '../dist/core.js';
import * as lib from '../dist/index.js';
import { testingHooks } from './internal.js';

describe('test hooks', () => {
  it('no entry exports __testing', () => {
    expect(Object.keys(lib)).not.toContain('__testing');
    expect(Object.keys(core)).not.toContain('__testing');
  });

  it("each bundle's hooks see that bundle's engines and workers", async () => {
    const hooks = testingHooks(lib.SparseAttention);
    expect(testingHooks(core.SparseAttention)).not.toBe(hooks); // core.js is a separate build with its own engines
    const pools = hooks.counters.poolsStarted;
    const attn = new lib.SparseAttention(1, 'all', undefined, 16, { backend: 'wasm', threads: 2 });
    const t = { data: new Float32Array(32 * 8), shape: [1, 32, 8] };
    await attn.forward(t, t, t);
    expect(hooks.counters.poolsStarted).toBe(pools + 1);
    expect(hooks.engines().reduce((n, e) => n + e.workers, 0)).toBe(2);
    expect(testingHooks(core.SparseAttention).engines()).toEqual([]);
    attn.dispose();
    expect(hooks.engines()).toEqual([]);
  });
});
