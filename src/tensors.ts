// Call inputs, read once. forward() takes each tensor's data reference and shape (or an
// ONNX Runtime tensor's dims) exactly once, at the call, validates those and uses only
// those afterwards: a caller that reuses its tensor objects (`v.data = other`, a mutated
// shape) cannot change what a call already in flight computes. Getters that throw,
// detached buffers and non-signals become ArgumentErrors naming the argument.
import { type Config, FORWARD_OPTION_KEYS, NOT_YET_FORWARD_OPTIONS, checkKeys } from './config.js';
import { argError, asLibraryError, checkPositiveInt } from './errors.js';
import { isDetached } from './whole.js';
export { checkStillWhole } from './whole.js';
import type { KvCache } from './kv-cache.js';

/**
 * A tensor: `{ data, shape }`, or an ONNX Runtime / transformers.js tensor
 * `{ type: 'float32', dims, data }` (e.g. `new ort.Tensor('float32', data, dims)`).
 */
export type Tensor =
  | { data: Float32Array; shape: readonly number[] }
  | { type: 'float32'; dims: readonly number[]; data: Float32Array };

/** A result: `shape` and `dims` (the same values) so that it also reads as an ORT tensor's fields. */
export interface TensorResult {
  data: Float32Array;
  shape: [number, number, number];
  dims: [number, number, number];
}

/** What a call took from its q, k, v: the data references and the validated shapes. */
export interface CallInputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  /** q's (and the output's) shape [batch, nQ, heads · headDim]. */
  shape: [number, number, number];
  /** k's and v's shape [batch, nK, kvHeads · headDim]. */
  kvShape: [number, number, number];
}

export function result(data: Float32Array, shape: readonly number[]): TensorResult {
  return { data, shape: [shape[0], shape[1], shape[2]], dims: [shape[0], shape[1], shape[2]] };
}

/** Reads one property once; a throwing getter becomes an ArgumentError naming it. */
function read(obj: object, key: string, name: string): unknown {
  try {
    return (obj as Record<string, unknown>)[key];
  } catch (e) {
    throw asLibraryError(e, `${name}.${key}`);
  }
}

/** Checks a [batch, nCtx, nEmbd] shape of positive integers. */
export function checkShape(name: string, shape: unknown): asserts shape is [number, number, number] {
  if (!Array.isArray(shape) || shape.length !== 3) throw argError(name, 'an array [batch, nCtx, nEmbd]', shape);
  shape.forEach((x, i) => checkPositiveInt(`${name}[${i}]`, x));
}

export function checkHeads(shape: readonly [number, number, number], heads: number): void {
  if (shape[2] % heads !== 0) {
    throw argError('nEmbd', `a multiple of heads (${heads}); the shape is [${shape.join(', ')}]`, shape[2]);
  }
}

/** Takes `{ data, shape }` or `{ type, dims, data }` once; returns the data and a copy of the shape. */
export function readTensor(name: string, t: unknown): { data: Float32Array; shape: [number, number, number] } {
  const expected = "a tensor { data: Float32Array, shape: [batch, nCtx, nEmbd] } or an ONNX Runtime tensor { type: 'float32', dims, data }";
  if (t === null || typeof t !== 'object') throw argError(name, expected, t);
  const data = read(t, 'data', name);
  let shapeIn = read(t, 'shape', name);
  let shapeName = `${name}.shape`;
  if (shapeIn === undefined) {
    const type = read(t, 'type', name);
    shapeIn = read(t, 'dims', name);
    shapeName = `${name}.dims`;
    if (shapeIn === undefined) throw argError(name, expected, t);
    if (type !== 'float32') throw argError(`${name}.type`, "'float32'", type);
  }
  if (!(data instanceof Float32Array)) throw argError(`${name}.data`, 'a Float32Array', data);
  // A copy taken now: the caller's array may change while the call is in flight.
  if (!Array.isArray(shapeIn)) throw argError(shapeName, 'an array [batch, nCtx, nEmbd]', shapeIn);
  let shape: unknown[];
  try {
    shape = Array.from(shapeIn as unknown[]);
  } catch (e) {
    throw asLibraryError(e, shapeName);
  }
  checkShape(shapeName, shape);
  const n = shape[0] * shape[1] * shape[2];
  if (data.length !== n) {
    throw argError(`${name}.data.length`, `${n} for shape [${shape.join(', ')}]${isDetached(data) ? ' (its buffer is detached)' : ''}`, data.length);
  }
  return { data, shape: [shape[0], shape[1], shape[2]] };
}

/**
 * Reads and checks q, k, v, each exactly once: q [batch, nQ, heads · d], k and v [batch, nK,
 * kvHeads · d] with one shape; nQ may differ from nK (cross-attention, aligned bottom-right).
 */
export function readInputs(config: Pick<Config, 'heads'> & Partial<Pick<Config, 'kvHeads'>>, q: unknown, k: unknown, v: unknown): CallInputs {
  const tq = readTensor('q', q);
  const tk = readTensor('k', k);
  const tv = readTensor('v', v);
  const shape = tq.shape;
  checkHeads(shape, config.heads);
  const kvHeads = config.kvHeads ?? config.heads;
  const kvEmbd = (shape[2] / config.heads) * kvHeads;
  const kv = tk.shape;
  const what = kvHeads === config.heads ? '' : `, ${kvHeads} K/V heads`;
  if (kv[0] !== shape[0] || kv[2] !== kvEmbd) {
    throw argError('k.shape', `[${shape[0]}, nK, ${kvEmbd}] (q's batch, any nK, kvHeads · headDim${what})`, kv);
  }
  if (tv.shape[0] !== kv[0] || tv.shape[1] !== kv[1] || tv.shape[2] !== kv[2]) {
    throw argError('v.shape', `equal to k.shape [${kv.join(', ')}]`, tv.shape);
  }
  return { q: tq.data, k: tk.data, v: tv.data, shape, kvShape: kv };
}

/** Checks forward's `out` option against the call's shape and inputs; returns it. */
export function checkOut(out: unknown, shape: readonly number[], inputs: readonly Float32Array[]): Float32Array | undefined {
  if (out === undefined) return undefined;
  const n = shape[0] * shape[1] * shape[2];
  if (!(out instanceof Float32Array) || out.length !== n) {
    throw argError('out', `a Float32Array of ${n} floats (batch·nCtx·nEmbd for [${shape.join(', ')}])`, out);
  }
  for (const [name, t] of inputs.map((t, i) => [['q', 'k', 'v'][i], t] as const)) {
    const apart = out.buffer !== t.buffer || out.byteOffset + out.byteLength <= t.byteOffset || t.byteOffset + t.byteLength <= out.byteOffset;
    if (!apart) throw argError('out', `memory apart from ${name}.data (the inputs are never modified)`, out);
  }
  return out;
}

export function checkKeyLengths(keyLengths: unknown, batch: number, nCtx: number): Int32Array | null {
  if (keyLengths === undefined || keyLengths === null) return null;
  if (!(Array.isArray(keyLengths) || ArrayBuffer.isView(keyLengths)) || (keyLengths as ArrayLike<number>).length !== batch) {
    throw argError('keyLengths', `an array of ${batch} lengths (one per batch item)`, keyLengths);
  }
  const out = new Int32Array(batch);
  for (let b = 0; b < batch; b++) {
    const x = (keyLengths as ArrayLike<number>)[b];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > nCtx) {
      throw argError(`keyLengths[${b}]`, `an integer in [0, ${nCtx}]`, x);
    }
    out[b] = x;
  }
  return out;
}

/** An AbortSignal, or an ArgumentError (a `{}` or a string would fail later with a TypeError). */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  const s = signal as Partial<AbortSignal> | null;
  if (s === null || typeof s !== 'object' || typeof s.aborted !== 'boolean' || typeof s.addEventListener !== 'function' || typeof s.removeEventListener !== 'function') {
    throw argError('signal', 'an AbortSignal (e.g. new AbortController().signal)', signal);
  }
  return signal as AbortSignal;
}

export interface ForwardOptions {
  /** Per batch item, keys at positions >= keyLengths[b] are masked out. */
  keyLengths?: ArrayLike<number>;
  /** Aborts the call (its promise rejects with an AbortedError whose cause is the signal's reason). */
  signal?: AbortSignal;
  /**
   * Float32Array of batch·nCtx·nEmbd floats the result is written to (and returned as
   * `data`), instead of a new array: a caller that reuses it avoids allocating (and page
   * faulting) a fresh result per call. A tensor from createTensor() is written in place by
   * the CPU kernel. Must not overlap q, k or v.
   */
  out?: Float32Array;
  /**
   * Called with the fraction of the call done (0 < f <= 1), at most about 20 times a second
   * while it computes (CPU: by finished kernel tasks; GPU: by chunks), and once with 1 at
   * the end. A throwing callback does not fail the call.
   */
  onProgress?: (fraction: number) => void;
  /**
   * A KV cache from createCache(): k and v are the new tokens' keys and values, appended at
   * positions cache.length …; q (one row per new token) attends to every cached key.
   */
  cache?: KvCache;
  /**
   * A Float32Array of batch·heads·nCtx floats that receives each row's natural-log logsumexp
   * of its final logits over its allowed keys ([batch][heads][nCtx]; sinks excluded;
   * −Infinity for a row with no key), for mergeAttention.
   */
  lse?: Float32Array;
}

/** Forward options, read once and checked. */
export interface CallOptions {
  lse: unknown;
  keyLengths: unknown;
  cache: unknown;
  signal: AbortSignal | undefined;
  out: unknown;
  onProgress: ((fraction: number) => void) | undefined;
}

/**
 * Reads forward's options once (each getter runs once); unknown keys are errors naming the
 * nearest valid one (a typo would silently change the call). `allowed`: the keys this entry
 * point takes (forwardSync and plan take fewer).
 */
export function readCallOptions(options: unknown, allowed: readonly string[] = FORWARD_OPTION_KEYS): CallOptions {
  if (options === undefined) return { keyLengths: undefined, cache: undefined, signal: undefined, out: undefined, onProgress: undefined, lse: undefined };
  if (options === null || typeof options !== 'object') throw argError('forward options', 'an object or undefined', options);
  const o = checkKeys('forward options', options, allowed, NOT_YET_FORWARD_OPTIONS);
  const get = (key: string) => o[key];
  const onProgress = get('onProgress');
  if (onProgress !== undefined && typeof onProgress !== 'function') throw argError('onProgress', 'a function (fraction) => void', onProgress);
  return {
    keyLengths: get('keyLengths'),
    cache: get('cache'),
    signal: checkSignal(get('signal')),
    out: get('out'),
    onProgress: onProgress as CallOptions['onProgress'],
    lse: get('lse'),
  };
}
