// The public KV cache: keys and values of the tokens seen so far, kept by the instance's CPU
// engine in the kernel's packed form (src/backends/wasm/kv-cache.ts). forward(q, kNew, vNew,
// { cache }) appends kNew, vNew at positions length … and attends q to every cached key,
// aligned bottom-right: a prefill chunk and a decode step are the same call.
import { ArgumentError, StateError, argError, checkPositiveInt } from './errors.js';

/** A path's storage of a cache: the CPU engine's (backends/wasm/kv-cache.ts) or GPU buffers (backends/webgpu/kv-cache.ts). */
export interface CacheStore {
  readonly bytes: number;
  /** Bytes of K and V written into it so far (appends, roll-backs). */
  readonly bytesWritten: number;
  append(kNew: Float32Array | Uint16Array, vNew: Float32Array | Uint16Array, base: number, n: number): void;
  clear(from: number, to: number): void;
  dispose(): void;
}

export interface KvCacheOptions {
  /** Batch items (sequences generated side by side). */
  batch: number;
  /** Tokens the cache can hold. */
  capacity: number;
}

export class KvCache<S extends CacheStore = CacheStore> {
  readonly batch: number;
  readonly capacity: number;
  private len = 0;
  private inFlight = false;
  private store: S | null = null;
  private disposed = false;
  private headDim = 0;

  /**
   * @internal Made by SparseAttention.createCache. The memory is taken at the first call,
   * when the head dimension is known (`make`).
   */
  constructor(
    readonly owner: object,
    private readonly make: (headDim: number) => S,
    batch: number,
    capacity: number,
    /** The path whose memory holds it. */
    readonly path: 'wasm' | 'webgpu' = 'wasm',
  ) {
    this.batch = batch;
    this.capacity = capacity;
  }

  /** Tokens cached. */
  get length(): number {
    return this.len;
  }

  /** Bytes of engine (or GPU) memory it holds (K and V: f32, or halves with dtype 'float16'). */
  get bytes(): number {
    return this.store?.bytes ?? 0;
  }

  /**
   * Bytes of K and V written into the cache's memory so far (appends and roll-backs), counted
   * where they are written: an appended token writes only its own rows, 2 · kvHeads ·
   * headDim · 4 bytes per batch item, whatever the cache's length.
   */
  get bytesWritten(): number {
    return this.store?.bytesWritten ?? 0;
  }

  /** Rolls back to the first n tokens (e.g. rejected speculative tokens). */
  truncate(n: number): void {
    if (this.disposed) throw new StateError('this KV cache was disposed');
    if (this.inFlight) throw new StateError('cache.truncate cannot run while a forward() call on this cache computes; await it first');
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > this.len) throw argError('n', `an integer in [0, ${this.len}] (the cache's length)`, n);
    this.store?.clear(n, this.len);
    this.len = n;
  }

  /** Releases its memory; the cache cannot be used afterwards. */
  dispose(): void {
    this.disposed = true;
    this.store?.dispose();
    this.store = null;
  }

  /** @internal Appends rows (positions length …), marks the cache busy; returns the position of the first. */
  begin(kNew: Float32Array | Uint16Array | null, vNew: Float32Array | Uint16Array | null, nNew: number, headDim: number): { store: S; base: number } {
    if (this.disposed) throw new StateError('this KV cache was disposed');
    if (this.headDim && headDim !== this.headDim) throw argError('k.shape[2] / kvHeads', `the cache's head dim (${this.headDim})`, headDim);
    if (this.inFlight) throw new StateError('a forward() call on this KV cache is in flight; await it before the next');
    if (this.len + nNew > this.capacity) {
      throw new ArgumentError(`cache: appending ${nNew} tokens to ${this.len} exceeds its capacity (${this.capacity}); nothing was appended`);
    }
    const base = this.len;
    if (!this.store) {
      this.store = this.make(headDim);
      this.headDim = headDim;
    }
    const store = this.store;
    // null: the caller writes the rows itself (forwardGPU copies them on the device)
    if (kNew && vNew) store.append(kNew, vNew, base, nNew);
    this.len = base + nNew;
    this.inFlight = true;
    return { store, base };
  }

  /** @internal The call ended: on failure its rows are rolled back. */
  end(base: number, ok: boolean): void {
    this.inFlight = false;
    if (!ok && this.store) {
      this.store.clear(base, this.len);
      this.len = base;
    }
  }

}

export function checkCacheOptions(o: unknown): KvCacheOptions {
  if (o === null || typeof o !== 'object') throw argError('createCache options', '{ batch, capacity }', o);
  const { batch, capacity } = o as Partial<KvCacheOptions>;
  return { batch: checkPositiveInt('batch', batch), capacity: checkPositiveInt('capacity', capacity) };
}
