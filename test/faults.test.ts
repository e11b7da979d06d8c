// Faults on the CPU path: a worker that dies mid-call (before or after the barrier between
// the packing and attention phases, or terminated from outside), a wasm trap. Each call
// either gives the right answer (one retry on new workers) or fails with a clear error;
// nothing hangs, the pool heals and later calls are right. Node only (worker exit events).
import { afterEach, describe, expect, it } from 'vitest';
import { SparseAttention } from '../dist/index.js';
import { __testing } from './internal.js';
import { describeCase, expectClose, inputs, reference, type Case } from './helpers.js';

const { faults, counters } = __testing;
// Big enough that every worker takes part (many tasks), small enough to be quick.
const c: Case = { mode: 'local', L: 40, bs: 16, batch: 2, nCtx: 700, heads: 3, headDim: 20 };
const tol = (what: string) => [1e-5, 1e-4, `${what} ${describeCase(c)}`] as const;

afterEach(() => {
  faults.workerExit = null;
  faults.trap = null;
  faults.onRun = null;
});

/** Workers alive (started, not exited) equal the pool sizes of the engines alive. */
function expectNoLeakedWorkers(): void {
  const inPools = __testing.engines().reduce((n, e) => n + e.workers, 0);
  expect(counters.workersAlive).toBe(inPools);
}

async function settle(): Promise<void> {
  // exit events of terminated workers arrive asynchronously
  for (let i = 0; i < 50 && counters.workersAlive !== __testing.engines().reduce((n, e) => n + e.workers, 0); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a worker dies mid-call', () => {
  for (const threads of [2, 3]) {
    for (const when of ['exit-before-barrier', 'exit-after-barrier'] as const) {
      it(`${when}, ${threads} threads: the call is retried on new workers and is right`, async () => {
        const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', threads });
        const { q, k, v } = inputs(c);
        await attn.forward(q, k, v); // pool up
        const pools = counters.poolsStarted;
        faults.workerExit = { worker: threads - 1, when, count: 1 };
        const out = await attn.forward(q, k, v);
        expectClose(out.data, reference(c), ...tol(`after ${when}`));
        expect(counters.poolsStarted).toBe(pools + 1); // healed: one new pool
        const again = await attn.forward(q, k, v);
        expectClose(again.data, reference(c), ...tol('the call after'));
        attn.dispose();
        await settle();
        expectNoLeakedWorkers();
      });
    }
  }

  it('dies again on the retry: a clear error, then later calls work', async () => {
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', threads: 2 });
    const { q, k, v } = inputs(c);
    faults.workerExit = { worker: 0, when: 'exit-before-barrier', count: 2 };
    await expect(attn.forward(q, k, v)).rejects.toThrow(
      /a CPU worker died during this call and again during its retry \(SparseAttention: CPU worker 0 exited with code 1\); no result was produced/,
    );
    expect(faults.workerExit).toBe(null);
    const out = await attn.forward(q, k, v);
    expectClose(out.data, reference(c), ...tol('after two deaths'));
    attn.dispose();
    await settle();
    expectNoLeakedWorkers();
  });

  it('terminated from outside at random moments of 20 calls: every call right, no hang', async () => {
    const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', threads: 3 });
    const { q, k, v } = inputs(c);
    let seed = 7;
    const pools = counters.poolsStarted;
    for (let n = 0; n < 20; n++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const delay = seed % 4; // 0: before the worker starts; else ms into the call
      const victim = (seed >>> 8) % 3;
      let armed = true;
      faults.onRun = (terminate) => {
        if (!armed) return; // the retry runs undisturbed
        armed = false;
        if (delay === 0) terminate(victim);
        else setTimeout(() => terminate(victim), delay);
      };
      const out = await attn.forward(q, k, v);
      expectClose(out.data, reference(c), ...tol(`call ${n} (victim ${victim}, ${delay} ms)`));
    }
    // every kill was noticed and healed (the last one, if after its call, at the next call)
    expect(counters.poolsStarted - pools).toBeGreaterThanOrEqual(19);
    attn.dispose();
    await settle();
    expectNoLeakedWorkers();
  });
});

describe('a wasm trap', () => {
  for (const phase of ['pack', 'attention'] as const) {
    for (const threads of [1, 3]) {
      it(`in phase ${phase}, ${threads} thread(s): a clear error, the instance stays usable`, async () => {
        const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm', threads });
        const { q, k, v } = inputs(c);
        faults.trap = phase;
        await expect(attn.forward(q, k, v)).rejects.toThrow(/SparseAttention: the wasm kernel failed in a worker: .*memory access out of bounds/);
        const out = await attn.forward(q, k, v);
        expectClose(out.data, reference(c), ...tol(`after a trap in ${phase}`));
        attn.dispose();
      });
    }
    it(`in phase ${phase}, forwardSync: a clear error, the instance stays usable`, () => {
      const attn = new SparseAttention(c.heads, c.mode, c.L, c.bs, { backend: 'wasm' });
      const { q, k, v } = inputs(c);
      faults.trap = phase;
      expect(() => attn.forwardSync(q, k, v)).toThrow(/SparseAttention: the wasm kernel trapped: memory access out of bounds/);
      expectClose(attn.forwardSync(q, k, v).data, reference(c), ...tol('after a trap'));
      attn.dispose();
    });
  }
});
