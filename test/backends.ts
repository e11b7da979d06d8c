// Every path the conformance suite runs: each wasm build this runtime validates, single-
// and multi-threaded, and forwardSync; the WebGPU kernel variants. Tolerances per path
// (DESIGN.md §1).
import { wasmVariants, type SparseAttentionOptions } from '../dist/index.js';

export interface PathUnderTest {
  name: string;
  options: SparseAttentionOptions;
  sync?: boolean;
  atol: number;
  rtol: number;
}

const WASM_TOL = { atol: 1e-5, rtol: 1e-4 };

export function wasmPaths(): PathUnderTest[] {
  const paths: PathUnderTest[] = [];
  for (const variant of wasmVariants()) {
    paths.push({ name: `wasm ${variant} 1 thread`, options: { backend: 'wasm', wasmVariant: variant, threads: 1 }, ...WASM_TOL });
    if (variant !== 'scalar') {
      paths.push({ name: `wasm ${variant} 3 threads`, options: { backend: 'wasm', wasmVariant: variant, threads: 3 }, ...WASM_TOL });
    }
  }
  paths.push({ name: 'wasm forwardSync', options: { backend: 'wasm' }, sync: true, ...WASM_TOL });
  return paths;
}

const WEBGPU_TOL = { atol: 1e-4, rtol: 1e-3 };

/**
 * The WebGPU kernel variants: subgroup shuffles (where the adapter has them) and plain;
 * Q read from global memory (default: 128-row query tiles where the block allows), Q staged
 * in workgroup memory (64-row tiles, the band modes at block 64), and Q staged every tile
 * beside K (Q_TILE: the H100's default 128×64 tiles; here 64×64, which fit lavapipe).
 */
export function webgpuPaths(): PathUnderTest[] {
  return [
    { name: 'webgpu default', options: { backend: 'webgpu' }, ...WEBGPU_TOL },
    { name: 'webgpu Q staged in workgroup memory (qGlobal off)', options: { backend: 'webgpu', webgpu: { qGlobal: false } }, ...WEBGPU_TOL },
    {
      // lavapipe's 32 KiB pick 128×32 tiles by default, where Q does not fit beside K
      name: 'webgpu Q staged per tile beside K (64×64 tiles from global Q)',
      options: { backend: 'webgpu', webgpu: { tileShape: { bm: 64, bn: 64, qGlobal: true } } },
      ...WEBGPU_TOL,
    },
    {
      name: 'webgpu plain, 8 rows/thread, key tile <= 32, V not overlapped',
      options: { backend: 'webgpu', webgpu: { subgroups: false, rowsPerThread: 8, maxKeyTile: 32, overlapV: false } },
      ...WEBGPU_TOL,
    },
    {
      name: 'webgpu v4 kernel (no prefetch, tiles in order, dot S), key tile <= 32',
      options: { backend: 'webgpu', webgpu: { prefetch: false, longFirst: false, fmaS: false, maxKeyTile: 32 } },
      ...WEBGPU_TOL,
    },
  ];
}
