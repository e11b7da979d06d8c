// forward() takes an AbortSignal: it stops promptly between kernel tasks, rejects with the
// signal's reason, and the instance keeps working afterwards.
import { describe, expect, it } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { expectClose, inputs, reference, type Case } from './helpers.js';

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
    it(`aborting a long call stops it promptly and the instance stays usable (${threads} thread(s))`, async () => {
      const big: Case = { mode: 'all', bs: 32, batch: 1, nCtx: 4096, heads: 8, headDim: 64 };
      const attn = new SparseAttention(big.heads, big.mode, undefined, big.bs, { backend: 'wasm', threads });
      const { q, k, v } = inputs(big);
      const t0 = performance.now();
      await attn.forward(q, k, v);
      const full = performance.now() - t0;
      const ac = new AbortController();
      const started = performance.now();
      const call = attn.forward(q, k, v, { signal: ac.signal });
      setTimeout(() => ac.abort(), 20);
      await expect(call).rejects.toThrow(/abort/i);
      const took = performance.now() - started;
      expect(took).toBeLessThan(Math.max(full / 2, 100));
      const small: Case = { mode: 'all', bs: 32, batch: 1, nCtx: 50, heads: 8, headDim: 64 };
      const s = inputs(small);
      const out = await attn.forward(s.q, s.k, s.v);
      expectClose(out.data, reference(small), 1e-5, 1e-4, 'after abort');
      attn.dispose();
    });
  }
});
