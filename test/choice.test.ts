// The backend choice (src/choice.ts) over a list of backends: the cheapest usable one wins,
// ties keep the list's order, a best case (backend not initialised) asks to initialise it
// first, unusable backends are skipped with their reason, a forced backend that became
// unusable hands over to the next usable one. A third backend is one more list entry.
import { describe, expect, it } from 'vitest';
import { choose } from '../src/choice.js';
import type { Backend, BackendId } from '../src/backends/backend.js';
import type { Plan } from '../src/plan.js';

function fake(id: string, ms: number, bestCase = false): Backend {
  return {
    id: id as BackendId,
    capabilities: { sync: false, resident: false, gpuBuffers: false },
    unavailable: null,
    init: async () => {},
    bandBlockSize: () => 32,
    canRun: () => null,
    estimate: () => ({ ms, bestCase, text: `${ms} ms on ${id}` }),
    run: async () => new Float32Array(0),
    describe: () => id,
    dispose: () => {},
  };
}
const plan = {} as Plan;
const ctx = (backends: Backend[], extra: Partial<Parameters<typeof choose>[0]> = {}) =>
  choose({ backends, forced: 'auto', usable: () => null, planOn: () => plan, copied: 4, ...extra });

describe('choose', () => {
  it('the cheapest of three backends wins; the reason names the others', () => {
    const c = ctx([fake('wasm', 5), fake('webgpu', 9), fake('webnn', 2)]);
    expect(c.backend.id).toBe('webnn');
    expect(c.reason).toBe('webnn: 2 ms on webnn <= 5 ms on wasm; 9 ms on webgpu');
  });
  it('ties keep the list order (the CPU first)', () => {
    expect(ctx([fake('wasm', 5), fake('webgpu', 5)]).backend.id).toBe('wasm');
  });
  it('a best case that wins asks to initialise that backend first', () => {
    const c = ctx([fake('wasm', 5), fake('webgpu', 1, true)]);
    expect(c.backend.id).toBe('webgpu');
    expect(c.probe).toBe(true);
    expect(c.reason).toMatch(/^webgpu if it initialises: 1 ms on webgpu < 5 ms on wasm$/);
  });
  it('unusable backends are skipped with their reason', () => {
    const c = ctx([fake('wasm', 5), fake('webgpu', 1)], { usable: (b) => (b.id === 'webgpu' ? 'the GPU device was lost' : null) });
    expect(c.backend.id).toBe('wasm');
    expect(c.reason).toBe('wasm: 5 ms on wasm; not used: webgpu: the GPU device was lost');
  });
  it('an initialised backend that cannot run the call is skipped with its reason', () => {
    const gpu = { ...fake('webgpu', 1), canRun: () => 'head dim 1024 does not fit' };
    const c = ctx([fake('wasm', 5), gpu]);
    expect(c.backend.id).toBe('wasm');
    expect(c.reason).toBe('wasm: 5 ms on wasm; not used: webgpu: head dim 1024 does not fit');
  });
  it('forced: runs even when slower; when unusable, the next usable backend runs and says why', () => {
    expect(ctx([fake('wasm', 1), fake('webgpu', 9)], { forced: 'webgpu' }).backend.id).toBe('webgpu');
    const c = ctx([fake('wasm', 1), fake('webgpu', 9)], { forced: 'webgpu', usable: (b) => (b.id === 'webgpu' ? 'lost' : null) });
    expect(c.backend.id).toBe('wasm');
    expect(c.reason).toBe('wasm: webgpu was requested but lost; the device is not retried');
  });
});
