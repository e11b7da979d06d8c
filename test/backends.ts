// Every path the conformance suite runs: each wasm build this runtime validates, single-
// and multi-threaded, and forwardSync; the WebGPU paths. Tolerances per path (DESIGN.md §1).
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
 * The WebGPU paths of the conformance suite: the automatic variant choice (subgroup variants
 * where the adapter has them), the same without subgroups (the `__plain` variants), and the
 * H100's Q_TILE kernel at head dim 64 in a 64×64 shape that fits lavapipe's 32 KiB (its
 * 128×64 does not; lavapipe's own choice at block 128 is 128×32 with Q from global memory).
 */
export function webgpuPaths(): PathUnderTest[] {
  return [
    { name: 'webgpu default', options: { backend: 'webgpu' }, ...WEBGPU_TOL },
    { name: 'webgpu plain (no subgroups)', options: { backend: 'webgpu', webgpu: { subgroups: false } }, ...WEBGPU_TOL },
    {
      name: 'webgpu bsattn_fwd_f32_q64_k64_qtile__subgroups (Q staged per tile beside K)',
      options: { backend: 'webgpu', webgpu: { variant: 'bsattn_fwd_f32_q64_k64_qtile__subgroups' } },
      ...WEBGPU_TOL,
    },
  ];
}
