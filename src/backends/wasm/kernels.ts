// Which kernel build runs: relaxed SIMD (FMA) if the runtime validates it, else plain
// SIMD, else scalar; each in a threaded build (shared memory) when the runtime can run
// workers over a SharedArrayBuffer. Feature detection is WebAssembly.validate on the
// kernels themselves, never a user-agent check.
import { KERNEL_BASE64 } from './kernels.generated.js';
import { UnsupportedError } from '../../errors.js';
import { ABI_HASH, type KernelExports } from './abi.js';

export type Variant = 'scalar' | 'simd' | 'relaxed';
export const VARIANTS: readonly Variant[] = ['relaxed', 'simd', 'scalar'];

type Source = WebAssembly.Module | ArrayBuffer | ArrayBufferView;
let provided: Partial<Record<string, Source>> = {};
const compiled = new Map<string, WebAssembly.Module>();

/**
 * Replaces the embedded kernels, for runtimes that cannot compile bytes (Cloudflare
 * workers import the .wasm files as modules) or bundlers that place them. Keys are
 * build names: 'relaxed', 'simd', 'scalar', 'relaxed.mt', 'simd.mt'.
 */
export function provideKernels(sources: Partial<Record<string, Source>>): void {
  provided = { ...provided, ...sources };
  compiled.clear();
}

function bytesOf(name: string): Uint8Array | null {
  const p = provided[name];
  if (p instanceof WebAssembly.Module) return null;
  if (p) return ArrayBuffer.isView(p) ? new Uint8Array(p.buffer, p.byteOffset, p.byteLength) : new Uint8Array(p);
  const b64 = (KERNEL_BASE64 as Record<string, string>)[name];
  if (!b64) return null;
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** True when this runtime can run the named build. */
function usable(name: string): boolean {
  const p = provided[name];
  if (p instanceof WebAssembly.Module) return true;
  const bytes = bytesOf(name);
  if (!bytes) return false;
  try {
    return WebAssembly.validate(bytes as BufferSource);
  } catch {
    return false;
  }
}

/** Shared memory and workers exist (and, in browsers, the page is cross-origin isolated). */
export function threadsAvailable(): boolean {
  if (typeof SharedArrayBuffer === 'undefined' || typeof Atomics === 'undefined') return false;
  const g = globalThis as { crossOriginIsolated?: boolean; process?: { versions?: { node?: string } }; Worker?: unknown };
  const isNode = typeof g.process?.versions?.node === 'string';
  if (!isNode && typeof g.Worker !== 'function') return false;
  if (g.crossOriginIsolated === false) return false;
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}

/** The variants this runtime validates, fastest first. */
export function availableVariants(): Variant[] {
  return VARIANTS.filter((v) => usable(v));
}

export interface KernelChoice {
  variant: Variant;
  threaded: boolean;
  module: WebAssembly.Module;
}

/** Picks and compiles a build (synchronously: every build is a few KiB). */
export function chooseKernel(wantThreads: boolean, variant?: Variant): KernelChoice {
  const threaded = wantThreads && threadsAvailable();
  const candidates = variant ? [variant] : availableVariants();
  for (const v of candidates) {
    // There is no threaded scalar build: runtimes with threads all have SIMD.
    const name = threaded && v !== 'scalar' ? `${v}.mt` : v;
    if (!usable(name)) continue;
    return { variant: v, threaded: name.endsWith('.mt'), module: compile(name) };
  }
  // No threaded build is usable (init() was given only single-threaded ones): one thread.
  if (threaded) return chooseKernel(false, variant);
  throw new UnsupportedError(
    `no WebAssembly kernel build is usable in this runtime (asked for ${variant ? `'${variant}'` : 'any'}; ` +
      `available: ${availableVariants().join(', ') || 'none'}; the sparse-attention/core entry embeds none: call init() first)`,
  );
}

function compile(name: string): WebAssembly.Module {
  let m = compiled.get(name);
  if (!m) {
    const p = provided[name];
    m = p instanceof WebAssembly.Module ? p : new WebAssembly.Module(bytesOf(name)! as BufferSource);
    compiled.set(name, m);
  }
  return m;
}

/** The chosen build over `memory`, refused when it was compiled from other ABI tables (abi.ts). */
export function instantiateKernel(choice: KernelChoice, memory: WebAssembly.Memory): KernelExports {
  const instance = new WebAssembly.Instance(choice.module, { env: { memory } });
  return checkAbi(instance.exports, choice.threaded ? `${choice.variant}.mt` : choice.variant);
}

/** Refuses a kernel build compiled from other tables: a .wasm of another version given to init(). */
export function checkAbi(exports: WebAssembly.Exports, build: string): KernelExports {
  const hash = exports.bsattn_abi_hash;
  const got = typeof hash === 'function' ? (hash() as number) >>> 0 : null;
  if (got !== ABI_HASH) {
    const hex = (h: number) => `0x${h.toString(16).padStart(8, '0')}`;
    throw new UnsupportedError(
      `the '${build}' kernel build does not match this version of the library (its ABI hash is ` +
        `${got === null ? 'missing' : hex(got)}, expected ${hex(ABI_HASH)}): give init() the dist/bsattn.*.wasm of this version`,
    );
  }
  return exports as unknown as KernelExports;
}
