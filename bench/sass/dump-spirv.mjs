// Prints the WGSL and the SPIR-V that Dawn generates for the forward kernel (Dawn toggles
// dump_shaders, disable_symbol_renaming), to count the robustness clamps (`UMin`) that
// docs/kernel-history.md cites for kernels v6-v8. Runs on any adapter, e.g. lavapipe:
//   npm run build; XDG_RUNTIME_DIR=/tmp node bench/sass/dump-spirv.mjs > dump.txt 2>&1
//   awk '/Dumped SPIRV/{n++} n==1' dump.txt | grep -c UMin
import { create } from 'webgpu';
import { SparseAttention } from '../../dist/index.js';

const gpu = create(['enable-dawn-features=allow_unsafe_apis,dump_shaders,disable_symbol_renaming']);
const adapter = await gpu.requestAdapter();
const device = await adapter.requestDevice({
  requiredFeatures: adapter.features.has('subgroups') ? ['subgroups'] : [],
  requiredLimits: {
    maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  },
});
const attn = new SparseAttention(1, 'all', undefined, 64, { backend: 'webgpu', device });
const t = { data: new Float32Array(128 * 64).fill(0.5), shape: [1, 128, 64] };
await attn.forward(t, t, t);
console.error('kernel:', attn.lastRun.detail);
attn.dispose();
device.destroy();
