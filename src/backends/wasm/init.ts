// init(): hands the CPU path kernel builds that the application placed itself — a
// compiled WebAssembly.Module (Cloudflare-style workers, which cannot compile bytes),
// the bytes, or a URL to fetch (bundlers that emit the .wasm as an asset). It wraps
// provideKernels(); the default entry does not need it (its kernels are embedded), the
// 'sparse-attention/core' entry does (it embeds none).
import { UnsupportedError, argError, describe } from '../../errors.js';
import { provideKernels } from './kernels.js';

/** A kernel build, as named in dist/bsattn.<build>.wasm. ".mt" builds import a shared memory (threads). */
export type KernelBuild = 'relaxed' | 'simd' | 'scalar' | 'relaxed.mt' | 'simd.mt';
const BUILDS: readonly KernelBuild[] = ['relaxed', 'simd', 'scalar', 'relaxed.mt', 'simd.mt'];

/** One kernel build: exactly one of `module`, `bytes`, `url`. */
export interface KernelSource {
  /** Which build the source holds (default 'simd', which runs wherever WebAssembly SIMD does). */
  build?: KernelBuild;
  module?: WebAssembly.Module;
  bytes?: ArrayBuffer | ArrayBufferView;
  /** Fetched with the runtime's fetch(). */
  url?: string | URL;
}

/**
 * Supplies kernel builds, e.g. `await init({ url: new URL('bsattn.simd.wasm', import.meta.url) })`
 * or `await init([{ build: 'relaxed', module: relaxed }, { build: 'simd', module: simd }])`.
 * Builds given here replace the embedded ones of the same name. Rejects when a source is
 * malformed, a fetch fails, or none of the given builds can run in this runtime.
 */
export async function init(sources: KernelSource | readonly KernelSource[]): Promise<void> {
  const list = Array.isArray(sources) ? (sources as readonly KernelSource[]) : [sources as KernelSource];
  if (list.length === 0) throw argError('init(sources)', 'a kernel source or a non-empty array of them', sources);
  const loaded: Partial<Record<KernelBuild, WebAssembly.Module | ArrayBuffer | ArrayBufferView>> = {};
  const rejected: string[] = [];
  for (const [i, s] of list.entries()) {
    const arg = Array.isArray(sources) ? `init(sources[${i}])` : 'init(source)';
    if (s === null || typeof s !== 'object') throw argError(arg, 'an object { build?, module | bytes | url }', s);
    const build = s.build ?? 'simd';
    if (!BUILDS.includes(build)) throw argError(`${arg}.build`, `one of ${BUILDS.map((b) => `'${b}'`).join(', ')}`, build);
    const given = (['module', 'bytes', 'url'] as const).filter((key) => s[key] !== undefined);
    if (given.length !== 1) throw argError(arg, 'an object with exactly one of module, bytes, url', given.length ? given : s);
    let source: WebAssembly.Module | ArrayBuffer | ArrayBufferView;
    if (s.module !== undefined) {
      if (!(s.module instanceof WebAssembly.Module)) throw argError(`${arg}.module`, 'a WebAssembly.Module', s.module);
      source = s.module;
    } else if (s.bytes !== undefined) {
      if (!(s.bytes instanceof ArrayBuffer) && !ArrayBuffer.isView(s.bytes)) {
        throw argError(`${arg}.bytes`, 'an ArrayBuffer or a typed array', s.bytes);
      }
      source = s.bytes;
    } else {
      source = await fetchBytes(arg, s.url!);
    }
    if (!(source instanceof WebAssembly.Module) && !validates(source)) {
      rejected.push(`'${build}'`);
      continue;
    }
    loaded[build] = source;
  }
  if (Object.keys(loaded).length === 0) {
    throw new UnsupportedError(
      `init(): none of the given kernel builds validates in this runtime (got ${rejected.join(', ')}; ` +
        `'simd' runs wherever WebAssembly SIMD does, 'scalar' everywhere)`,
    );
  }
  provideKernels(loaded);
}

async function fetchBytes(arg: string, url: string | URL): Promise<ArrayBuffer> {
  if (typeof url !== 'string' && !(url instanceof URL)) throw argError(`${arg}.url`, 'a string or a URL', url);
  let response: Response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new UnsupportedError(`init() could not fetch ${describe(String(url))}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  if (!response.ok) throw new UnsupportedError(`init() could not fetch ${describe(String(url))}: HTTP ${response.status}`);
  return response.arrayBuffer();
}

function validates(bytes: ArrayBuffer | ArrayBufferView): boolean {
  try {
    return WebAssembly.validate(bytes as BufferSource);
  } catch {
    return false;
  }
}
