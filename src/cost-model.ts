// The automatic path choice: an estimate of each path's time for a plan, from three
// constants per path (fixed cost per call, compute rate, transfer rate), so that `auto`
// counts bytes moved as well as FLOPs. Defaults are measurements (see DEFAULT_CALIBRATION);
// calibrate() re-measures them on the user's machine and the result can be persisted.
import type { Plan } from './plan.js';
import { ArgumentError } from './errors.js';

export interface PathRate {
  /** Cost of a call with no work: dispatch, synchronisation, result allocation (ms). */
  fixedMs: number;
  /** Compute rate on the kernel's visited blocks (plan.visitedFlops), GFLOP/s. */
  gflops: number;
  /** Rate of the copies a call makes (CPU: in and out of WebAssembly memory; GPU: upload and readback), GB/s. */
  gbps: number;
}

export interface Calibration {
  /** The CPU path, per worker thread for `gflops` (the estimate multiplies by threads). */
  wasm: PathRate;
  /** GPU adapters by class: software rasterisers (lavapipe, SwiftShader) and real GPUs. */
  webgpu: { software: PathRate; hardware: PathRate };
  /** Where these numbers were measured. */
  source: string;
}

/**
 * Measured defaults.
 * - wasm: 2-core Intel Xeon, Node 20 plain SIMD, one thread: W1 `all` 116 ms CPU time for
 *   2.2 GFLOP of visited blocks (19 GFLOP/s); sparse cases lower, 16 kept (docs/kernel-history.md, CPU);
 *   copies ~12 GB/s (bulk TypedArray.set into linear memory); fixed cost of a threaded call
 *   (postMessage round trip, barrier) ~0.15 ms.
 * - webgpu software: Mesa lavapipe 25.0.7 on the same 2 cores: 1.99–2.13 useful GFLOP/s on
 *   dense causal, 0.7 on sparse; 1–2 ms for a call of nCtx 64 — 5–15× slower than the CPU
 *   path in every case measured (bench/results/auto-*.json).
 * - webgpu hardware: NVIDIA H100 through Dawn/Vulkan in Node (GPU kernel v1, docs/kernel-history.md;
 *   batch 1, 16 heads, headDim 64): kernels at 8.8 TFLOP/s useful on `all`, 6.0 on `local`
 *   L=512, 1.8–2.3 on `strided` L=128 (6 TFLOP/s kept for visited blocks); a call of
 *   nCtx 128 took 1.2 ms end to end; uploads + readback ran at ~1.2 GB/s (nCtx 4096: 64 MB
 *   moved, 62.6 ms end to end for 5.3 ms of kernels).
 */
export const DEFAULT_CALIBRATION: Calibration = {
  wasm: { fixedMs: 0.15, gflops: 16, gbps: 12 },
  webgpu: {
    software: { fixedMs: 1.5, gflops: 1.5, gbps: 4 },
    hardware: { fixedMs: 1.2, gflops: 6000, gbps: 1.2 },
  },
  source: 'defaults measured on the 2-core Xeon dev machine (wasm, lavapipe) and an H100 (hardware GPU)',
};

let current: Calibration = DEFAULT_CALIBRATION;

/** Installs a calibration (e.g. one that calibrate() returned and the app persisted). */
export function setCalibration(c: Calibration): void {
  for (const [name, r] of [['wasm', c?.wasm], ['webgpu.software', c?.webgpu?.software], ['webgpu.hardware', c?.webgpu?.hardware]] as const) {
    if (!r || !(r.fixedMs >= 0) || !(r.gflops > 0) || !(r.gbps > 0)) {
      throw new ArgumentError(`calibration.${name} must have fixedMs >= 0, gflops > 0 and gbps > 0 (got ${JSON.stringify(r)})`);
    }
  }
  current = { ...c };
}

export function getCalibration(): Calibration {
  return current;
}

/** Bytes each path moves for one call: q, k, v in and the output back (halves with dtype 'float16'). */
export function bytesMoved(plan: Plan): number {
  return 4 * plan.batch * plan.nCtx * plan.nEmbd * (plan.dtype === 'float16' ? 2 : 4);
}

/** `copied`: how many of q, k, v and the result are copied (createTensor tensors are not). */
export function estimateWasmMs(plan: Plan, threads: number, c = current, copied = 4): number {
  const r = c.wasm;
  return r.fixedMs + (bytesMoved(plan) * copied) / 4 / (r.gbps * 1e6) + plan.visitedFlops / (r.gflops * Math.max(1, threads) * 1e6);
}

export function estimateGpuMs(plan: Plan, software: boolean, c = current): number {
  const r = software ? c.webgpu.software : c.webgpu.hardware;
  return r.fixedMs + bytesMoved(plan) / (r.gbps * 1e6) + plan.visitedFlops / (r.gflops * 1e6);
}

/** Software adapters run on the CPU the wasm path already uses. */
export function isSoftwareAdapter(name: string): boolean {
  return /llvmpipe|lavapipe|swiftshader|software|warp|cpu/i.test(name);
}
