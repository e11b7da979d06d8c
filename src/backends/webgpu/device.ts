// GPU device acquisition: the caller's GPUDevice first, else the runtime's navigator.gpu
// (Deno, browsers), else in Node only a lazy import('webgpu') (Dawn; an optional peer
// dependency, never loaded unless the GPU path is used). Requests the adapter's real
// limits instead of the 128 MiB binding default, and watches for device loss.
/// <reference types="@webgpu/types" />
import { isSoftwareAdapter } from '../../cost-model.js';
import { ArgumentError, UnsupportedError, describe } from '../../errors.js';

export interface GpuContext {
  device: GPUDevice;
  /** Whether this library created the device (and so destroys it on dispose). */
  owned: boolean;
  /** Adapter description for plan() and lastRun. */
  adapter: string;
  subgroups: boolean;
  /** The adapter's smallest subgroup size (0: unknown): flash-decoding's 16-lane shuffles need 16. */
  subgroupMin: number;
  timestamps: boolean;
  /** The device has `shader-f16`: half calls use f16 storage arrays (else u32 words of two halves). */
  shaderF16: boolean;
  /** The adapter runs on the CPU (lavapipe, SwiftShader): its compiler is the CPU's time too. */
  software: boolean;
  /** Dawn's GPU instance and adapter: held so that GC never frees them under the device. */
  keepAlive?: unknown[];
}

const LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
] as const;

/** Checks that a user-given device looks like a GPUDevice (duck-typed: runtimes differ). */
export function checkDevice(device: unknown): GPUDevice {
  const d = device as Partial<GPUDevice> | null;
  const ok =
    d !== null && typeof d === 'object' && typeof d.createShaderModule === 'function' &&
    typeof d.createBuffer === 'function' && typeof d.queue?.submit === 'function' && typeof d.limits === 'object';
  if (!ok) throw new ArgumentError(`options.device must be a GPUDevice (got ${describe(device)})`);
  return d as GPUDevice;
}

function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string' && typeof (globalThis as { Deno?: unknown }).Deno === 'undefined';
}

async function findGpu(): Promise<{ gpu: GPU; via: string }> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, via: 'navigator.gpu' };
  if (!isNode()) throw new UnsupportedError('WebGPU is not available here (no navigator.gpu)');
  let mod: { create: (flags: string[]) => GPU };
  try {
    const name = 'webgpu'; // a variable: bundlers leave the optional peer dependency alone
    mod = (await import(/* @vite-ignore */ name)) as typeof mod;
  } catch (e) {
    throw new UnsupportedError(`WebGPU needs the optional 'webgpu' package in Node (npm install webgpu): ${(e as Error).message}`);
  }
  return { gpu: mod.create([]), via: "the 'webgpu' package (Dawn)" };
}

export async function acquireDevice(userDevice: unknown): Promise<GpuContext> {
  if (userDevice !== undefined && userDevice !== null) {
    const device = checkDevice(userDevice);
    const info = (device as unknown as { adapterInfo?: GPUAdapterInfo & { subgroupMinSize?: number; isFallbackAdapter?: boolean } }).adapterInfo;
    return {
      device,
      owned: false,
      adapter: 'the GPUDevice given in options.device',
      subgroups: device.features.has('subgroups'),
      subgroupMin: info?.subgroupMinSize ?? 0,
      timestamps: device.features.has('timestamp-query'),
      shaderF16: device.features.has('shader-f16'),
      software: info ? info.isFallbackAdapter ?? isSoftwareAdapter(`${info.vendor} ${info.architecture} ${info.description}`) : false,
    };
  }
  const { gpu, via } = await findGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new UnsupportedError(
      `no WebGPU adapter found via ${via} (in Node on Linux: a Vulkan driver, e.g. ` +
        `mesa-vulkan-drivers, and XDG_RUNTIME_DIR set)`,
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMITS) requiredLimits[name] = adapter.limits[name];
  const info = (adapter as unknown as { info: GPUAdapterInfo & { subgroupMinSize?: number; isFallbackAdapter?: boolean } }).info ?? ({} as GPUAdapterInfo);
  // The kernel's row reduction shuffles across 8 adjacent lanes: subgroups must hold 8.
  const subgroups = adapter.features.has('subgroups') && (info.subgroupMinSize ?? 0) >= 8;
  const features: GPUFeatureName[] = [];
  if (subgroups) features.push('subgroups' as GPUFeatureName);
  const timestamps = adapter.features.has('timestamp-query');
  if (timestamps) features.push('timestamp-query');
  const shaderF16 = adapter.features.has('shader-f16');
  if (shaderF16) features.push('shader-f16');
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures: features });
  const name = [info.vendor, info.architecture, info.description || info.device].filter(Boolean).join(' ');
  return { device, owned: true, adapter: `${name || 'unknown adapter'} via ${via}`, subgroups, subgroupMin: info.subgroupMinSize ?? 0, timestamps, shaderF16, software: info.isFallbackAdapter ?? isSoftwareAdapter(name), keepAlive: [gpu, adapter] };
}

/** The library's own device, shared by every instance of the process (pipelines compile once). */
let shared: { ctx: Promise<GpuContext>; users: number } | null = null;
/**
 * The last shared device's destruction, until its `lost` promise settles: a new device
 * requested while Dawn is still tearing the old one down crashed the process (seen on
 * lavapipe: a call refused before any GPU work, dispose(), then a new instance).
 */
let retiring: Promise<unknown> | null = null;

export function acquireShared(): Promise<GpuContext> {
  if (!shared) {
    const after = retiring ?? Promise.resolve();
    const entry = { ctx: after.then(() => acquireDevice(undefined)), users: 0 };
    // A failed or lost device is never handed to a later instance.
    const forget = () => {
      if (shared === entry) shared = null;
    };
    entry.ctx.then((c) => c.device.lost.then(forget), forget);
    shared = entry;
  }
  shared.users++;
  return shared.ctx;
}

/** Drops one user of the shared device; the last one destroys it (no Dawn handle keeps Node alive). */
export function releaseShared(ctx: GpuContext): void {
  if (!shared) return;
  void shared.ctx.then((c) => {
    if (c !== ctx || !shared) return;
    if (--shared.users === 0) {
      shared = null;
      // Dawn is asked to drain the queue first (even when nothing was ever submitted)
      const done: Promise<unknown> = c.device.queue.onSubmittedWorkDone().then(() => {
        c.device.destroy();
        return c.device.lost;
      }).finally(() => {
        if (retiring === done) retiring = null;
      });
      retiring = done;
    }
  }, () => undefined);
}
