// forward() takes an AbortSignal: it rejects at once with the signal's reason, its work stops
// between kernel tasks (measured in CPU time, not on a clock), and the instance keeps working.
import { describe, expect, it } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { expectClose, inputs, reference, type Case } from './helpers.js';
import { cpuMs, nextTurn, track } from './settle.js';

describe('AbortSignal', () => {
  it('an already-aborted signal rejects before any work', async () => {
    const c: Case = { mode: 'all', bs: 16, batch: 1, nCtx: 20, heads: 1, headDim: 4 };
    const attn = new SparseAttention(1, 'all', undefined, 16, { backend: 'wasm' });
    const { q, k, v } = inputs(c);
    const ac = new AbortController();
    ac.abort(new Error('stop now'));
    await expect(attn.forward(q, k, v, { signal: ac.signal })).rejects.toThrow('stop now');
    attn.dispose();
  });

  for (const threads of [1, 2]) {
    it(`aborting a long call rejects it at once, stops its work and the instance stays usable (${threads} thread(s))`, async () => {
      const big: Case = { mode: 'all', bs: 32, batch: 1, nCtx: 4096, heads: 8, headDim: 64 };
      const attn = new SparseAttention(big.heads, big.mode, undefined, big.bs, { backend: 'wasm', threads });
      const { q, k, v } = inputs(big);
      let cpu0 = cpuMs();
      await attn.forward(q, k, v);
      const fullCpu = cpuMs() - cpu0;
      const ac = new AbortController();
      cpu0 = cpuMs();
      const call = track(attn.forward(q, k, v, { signal: ac.signal }));
      await new Promise((r) => setTimeout(r, 20));
      ac.abort();
      await nextTurn(); // the rejection does not wait for the workers
      expect(call.state).toBe('rejected');
      expect(String(call.error)).toMatch(/abort/i);
      const small: Case = { mode: 'all', bs: 32, batch: 1, nCtx: 50, heads: 8, headDim: 64 };
      const s = inputs(small);
      const out = await attn.forward(s.q, s.k, s.v); // runs once the aborted call's tasks have stopped
      // Work, not wall-clock time: the aborted call's running tasks finish (<= ~50 ms of one core
      // each), the rest are never taken; CPU time counts that whatever the machine's load.
      expect(cpuMs() - cpu0, `CPU ms of the aborted call + a small one vs a full call (${fullCpu.toFixed(0)} ms)`).toBeLessThan(fullCpu / 2);
      expectClose(out.data, reference(small), 1e-5, 1e-4, 'after abort');
      attn.dispose();
    });
  }
});
