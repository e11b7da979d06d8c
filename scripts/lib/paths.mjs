// The paths the scripts (property, soak, limits) run, as test/backends.ts lists them for
// vitest: each wasm build this runtime validates (threaded where it can be) and
// forwardSync; and the WebGPU path with its tolerance (DESIGN.md §1: |a-r| <= 1e-4 + 1e-3·|r|).
const WASM_TOL = { atol: 1e-5, rtol: 1e-4 };

export function cpuPaths(lib) {
  // noCache: a KV cache lives in the threaded engine's shared memory, which the scalar build
  // (no threaded build of it) and forwardSync (the single-threaded engine) have not: checkCase
  // does not run cache cases there (README: Limits)
  const paths = lib.wasmVariants().map((variant) => ({ name: `wasm ${variant}`, options: { backend: 'wasm', wasmVariant: variant }, noCache: variant === 'scalar', ...WASM_TOL }));
  paths.push({ name: 'wasm forwardSync', options: { backend: 'wasm' }, sync: true, noCache: true, ...WASM_TOL });
  paths.push({ name: 'wasm createTensor in/out', options: { backend: 'wasm' }, resident: true, ...WASM_TOL });
  return paths;
}

const WEBGPU_TOL = { atol: 1e-4, rtol: 1e-3 };

/**
 * The GPU path (forced, so that a silent CPU fallback fails the check): the default tiles,
 * and 64×64 tiles that stage Q every tile beside K (the H100's Q_TILE kernel; lavapipe's
 * default 128×32 tiles have no room for it), as test/backends.ts runs them.
 */
export function gpuPaths() {
  return [
    { name: 'webgpu', options: { backend: 'webgpu' }, ...WEBGPU_TOL },
    { name: 'webgpu Q_TILE 64x64', options: { backend: 'webgpu', webgpu: { variant: 'bsattn_fwd_f32_q64_k64_qtile__subgroups' } }, ...WEBGPU_TOL },
  ];
}
