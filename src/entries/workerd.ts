// Entry for Cloudflare-style workers (workerd): they cannot compile WebAssembly from bytes,
// so the kernels come in as imported .wasm modules (CompiledWasm modules in workerd,
// `[[rules]] type = "CompiledWasm"` or the default .wasm rule in wrangler) instead of the
// base64 the default entry embeds. Workers have no threads: the single-threaded builds only.
// The relaxed-SIMD build is imported too: every workerd/Cloudflare V8 validates it.
import relaxed from './bsattn.relaxed.wasm';
import simd from './bsattn.simd.wasm';
import { provideKernels } from '../backends/wasm/kernels.js';

provideKernels({ relaxed, simd });

export * from '../index.js';
