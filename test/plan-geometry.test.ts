// One owner of the block geometry (issue 16): plan() describes the blocks the chosen
// backend's kernels run — the CPU's band block (bandBlockSize, 16–64) on 'wasm', the GPU's
// 128/64-row blocks on 'webgpu' — and its counts and estimates follow those blocks. No GPU
// is needed: the geometry is the backend's rule, not the device's.
import { describe, expect, it } from 'vitest';
import { SparseAttention } from '../dist/index.js';

describe('plan() reports the chosen backend\'s own blocks', () => {
  const shape = [1, 4096, 512];
  it.each([
    ['all', undefined],
    ['local', 32],
    ['strided', 64],
  ] as const)('%s: wasm blocks vs webgpu blocks', (mode, L) => {
    const cpu = new SparseAttention(8, mode, L, 32, { backend: 'wasm' });
    const gpu = new SparseAttention(8, mode, L, 32, { backend: 'webgpu' });
    const pc = cpu.plan(shape);
    const pg = gpu.plan(shape);
    expect(pc.backend).toBe('wasm');
    expect(pg.backend).toBe('webgpu');
    // strided at 4096 / 64 = 64-row regrouped sequences: the GPU's small block; else 128 (head dim 64)
    expect(pg.blockSize).toBe(mode === 'strided' ? 64 : 128);
    expect(pc.blockSize).toBe(mode === 'strided' ? 32 : 32);
    // same useful work, visited blocks counted on each backend's own blocks
    expect(pg.allowedPairs).toBe(pc.allowedPairs);
    expect(pg.visitedFlops).toBeGreaterThanOrEqual(pc.visitedFlops);
    const blocks = (p: typeof pc) => p.visitedFlops / (4 * p.headDim * p.blockSize * p.blockSize);
    expect(blocks(pg)).toBe(pg.blocksVisited);
    expect(blocks(pc)).toBe(pc.blocksVisited);
    cpu.dispose();
    gpu.dispose();
  });

  it('local L=32 at 4096: the GPU visits 2 key blocks of 128 per query block, not the CPU\'s 32-blocks', () => {
    const gpu = new SparseAttention(8, 'local', 32, 32, { backend: 'webgpu' });
    const p = gpu.plan(shape);
    expect(p.blockSize).toBe(128);
    // 32 query blocks of 128: the first visits 1 key block, the others 2 — per head
    expect(p.blocksVisited).toBe(8 * (1 + 31 * 2));
    gpu.dispose();
  });
});
