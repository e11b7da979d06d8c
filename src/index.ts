// Public API of sparse-attention.
export { SparseAttention } from './sparse-attention.js';
export type { GpuBufferLike, GpuDeviceLike, GpuTensor, PlanInfo, RunInfo } from './sparse-attention.js';
export type { AttnMode, BackendName, CustomLayout, Dtype, SparseAttentionOptions, TokenMask, WasmVariant, WebGpuOptions } from './config.js';
export type { BlockMasks, FlexBlockLayout, OnnxSparseLayout } from './config.js';
export { mergeAttention } from './merge.js';
export type { AttentionPart, MergedAttention } from './merge.js';
export type { Float16ArrayLike, ForwardOptions, HalfArray, HalfTensor, Tensor, TensorArray, TensorResult } from './tensors.js';
export { KvCache } from './kv-cache.js';
export type { KvCacheOptions } from './kv-cache.js';
export { attentionReference, referenceMask } from './reference.js';
export type { ReferenceResult } from './reference.js';
export { availableVariants as wasmVariants, provideKernels } from './backends/wasm/kernels.js';
export { init } from './backends/wasm/init.js';
export type { KernelBuild, KernelSource } from './backends/wasm/init.js';
export { DEFAULT_CALIBRATION, getCalibration, setCalibration } from './cost-model.js';
export { calibrate } from './calibrate.js';
export type { CalibrateOptions } from './calibrate.js';
export type { Calibration, PathRate } from './cost-model.js';
// Test-only hooks (fault injection, live counters) go on a global slot, not the API: src/testing.ts.
import { registerTestingHooks } from './testing.js';
registerTestingHooks();
export {
  AbortedError,
  ArgumentError,
  DeviceLostError,
  DisposedError,
  KernelError,
  MemoryLimitError,
  SparseAttentionError,
  StateError,
  UnsupportedError,
  WorkerError,
} from './errors.js';
export type { ErrorCode } from './errors.js';
