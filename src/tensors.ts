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
import type { TensorData } from './backends/backend.js';

/**
 * A Float16Array (ES2025; Node 24+, Deno, Bun, recent browsers), typed structurally so that
 * the library builds against ES2022's lib.
 */
export interface Float16ArrayLike extends ArrayBufferView {
  readonly length: number;
  [index: number]: number;
  readonly [Symbol.toStringTag]: 'Float16Array';
}

/** Half storage (dtype 'float16'): a Float16Array, or a Uint16Array of IEEE half bits. */
export type HalfArray = Uint16Array | Float16ArrayLike;
export type TensorArray = Float32Array | HalfArray;

/** Whether x is a Float16Array (by its tag: a runtime may lack the global). */
export function isFloat16Array(x: unknown): x is Float16ArrayLike {
  return ArrayBuffer.isView(x) && Object.prototype.toString.call(x) === '[object Float16Array]';
}

/**
 * A tensor: `{ data, shape }`, or an ONNX Runtime / transformers.js tensor
 * `{ type: 'float32', dims, data }` (e.g. `new ort.Tensor('float32', data, dims)`).
 */
export type Tensor =
  | { data: Float32Array; shape: readonly number[] }
  | { type: 'float32'; dims: readonly number[]; data: Float32Array };

/** A tensor of halves (dtype 'float16'): `{ data, shape }` or an ORT tensor `{ type: 'float16', dims, data }`. */
export type HalfTensor<D extends HalfArray = HalfArray> =
  | { data: D; shape: readonly number[] }
  | { type: 'float16'; dims: readonly number[]; data: D };

/** A result: `shape` and `dims` (the same values) so that it also reads as an ORT tensor's fields; data of q's type. */
export interface TensorResult<D extends TensorArray = Float32Array> {
  data: D;
  shape: [number, number, number];
  dims: [number, number, number];
}

/**
 * What a call took from its q, k, v: the data references and the validated shapes. Halves
 * are held as Uint16Arrays over the caller's memory (a Float16Array too: no copy).
 */
export interface CallInputs {
  q: TensorData;
  k: TensorData;
  v: TensorData;
  /** q's data was a Float16Array: the result is one too. */
  float16Array: boolean;
  /** q's (and the output's) shape [batch, nQ, heads · headDim]. */
  shape: [number, number, number];
  /** k's and v's shape [batch, nK, kvHeads · headDim]. */
  kvShape: [number, number, number];
}

export function result(data: TensorData, shape: readonly number[], float16Array = false, given?: unknown): TensorResult<TensorArray> {
  // a Float16Array where q was one: the caller's `out` itself, else one over the result's
  // memory (the runtime has the class then)
  const F16 = (globalThis as { Float16Array?: new (b: ArrayBufferLike, o: number, n: number) => Float16ArrayLike }).Float16Array;
  const out = !float16Array || !F16 ? data : isFloat16Array(given) ? given : new F16(data.buffer, data.byteOffset, data.length);
  return { data: out, shape: [shape[0], shape[1], shape[2]], dims: [shape[0], shape[1], shape[2]] };
}

/** A Float16Array's memory as a Uint16Array of its half bits (the same memory); other arrays as they are. */
export function halfBits<T>(data: T): T | Uint16Array {
  return isFloat16Array(data) ? new Uint16Array(data.buffer, data.byteOffset, data.length) : data;
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

/** The array a tensor's data must be for a dtype, in words. */
function dataExpected(dtype: 'float32' | 'float16', data?: unknown): string {
  if (dtype === 'float16') return "a Float16Array or a Uint16Array of half bits (dtype 'float16')";
  return data instanceof Uint16Array || isFloat16Array(data) ? "a Float32Array (halves need options.dtype 'float16')" : 'a Float32Array';
}

/**
 * Takes `{ data, shape }` or `{ type, dims, data }` once; returns the data (a Float16Array as
 * a Uint16Array view of its bits) and a copy of the shape.
 */
export function readTensor(name: string, t: unknown, dtype: 'float32' | 'float16' = 'float32'): { data: TensorData; shape: [number, number, number]; float16Array: boolean } {
  const expected = dtype === 'float16'
    ? `a tensor { data, shape: [batch, nCtx, nEmbd] } or an ONNX Runtime tensor { type: 'float16', dims, data }, data ${dataExpected(dtype)}`
    : "a tensor { data: Float32Array, shape: [batch, nCtx, nEmbd] } or an ONNX Runtime tensor { type: 'float32', dims, data }";
  if (t === null || typeof t !== 'object') throw argError(name, expected, t);
  const data = read(t, 'data', name);
  let shapeIn = read(t, 'shape', name);
  let shapeName = `${name}.shape`;
  if (shapeIn === undefined) {
    const type = read(t, 'type', name);
    shapeIn = read(t, 'dims', name);
    shapeName = `${name}.dims`;
    if (shapeIn === undefined) throw argError(name, expected, t);
    if (type !== dtype) throw argError(`${name}.type`, dtype === 'float16' ? "'float16' (the instance's dtype)" : "'float32'", type);
  }
  const float16Array = isFloat16Array(data);
  const ok = dtype === 'float16' ? data instanceof Uint16Array || float16Array : data instanceof Float32Array;
  if (!ok) throw argError(`${name}.data`, dataExpected(dtype, data), data);
  const values = data as TensorArray;
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
  if (values.length !== n) {
    throw argError(`${name}.data.length`, `${n} for shape [${shape.join(', ')}]${isDetached(values) ? ' (its buffer is detached)' : ''}`, values.length);
  }
  const bits = halfBits(values) as TensorData;
  return { data: bits, shape: [shape[0], shape[1], shape[2]], float16Array };
}

/**
 * Reads and checks q, k, v, each exactly once: q [batch, nQ, heads · d], k and v [batch, nK,
 * kvHeads · d] with one shape; nQ may differ from nK (cross-attention, aligned bottom-right).
 */
export function readInputs(config: Pick<Config, 'heads'> & Partial<Pick<Config, 'kvHeads' | 'dtype'>>, q: unknown, k: unknown, v: unknown): CallInputs {
  const dtype = config.dtype ?? 'float32';
  const tq = readTensor('q', q, dtype);
  const tk = readTensor('k', k, dtype);
  const tv = readTensor('v', v, dtype);
  // halves as Float16Array in one, Uint16Array in another: most likely a mix-up of the caller's
  for (const [n, t] of [['k', tk], ['v', tv]] as const) {
    if (t.float16Array !== tq.float16Array) {
      throw argError(`${n}.data`, `q.data's type (${tq.float16Array ? 'Float16Array' : 'Uint16Array'}): q, k and v share one dtype`, t.float16Array ? 'a Float16Array' : 'a Uint16Array');
    }
  }
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
  return { q: tq.data, k: tk.data, v: tv.data, float16Array: tq.float16Array, shape, kvShape: kv };
}

/**
 * Checks forward's `out` option against the call's shape and inputs (an array of q's type);
 * returns it, a Float16Array as a Uint16Array over its memory.
 */
export function checkOut(out: unknown, shape: readonly number[], inputs: readonly TensorData[], float16Array = false): TensorData | undefined {
  if (out === undefined) return undefined;
  const n = shape[0] * shape[1] * shape[2];
  const q = inputs[0];
  const kind = q instanceof Float32Array ? 'Float32Array' : float16Array ? 'Float16Array' : 'Uint16Array';
  const sameKind = kind === 'Float16Array' ? isFloat16Array(out) : kind === 'Uint16Array' ? out instanceof Uint16Array : out instanceof Float32Array;
  if (!sameKind || (out as TensorArray).length !== n) {
    const what = kind === 'Float32Array' ? `${n} floats` : `${n} values (q's type)`;
    throw argError('out', `a ${kind} of ${what} (batch·nCtx·nEmbd for [${shape.join(', ')}])`, out);
  }
  out = halfBits(out as TensorArray);
  if (!(out instanceof Float32Array || out instanceof Uint16Array)) throw argError('out', `a ${kind}`, out);
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

/**
 * forward's `seqLengths` (packed sequences), or null: batch 1, q and k of one length, and
 * non-negative integer lengths summing to it. Backend-neutral: the path that runs it says
 * whether it can.
 */
export function checkSeqLengths(seqLengths: unknown, shape: readonly number[], nK: number): Int32Array | null {
  if (seqLengths === undefined || seqLengths === null) return null;
  const [batch, nQ] = shape;
  if (!(Array.isArray(seqLengths) || ArrayBuffer.isView(seqLengths)) || (seqLengths as ArrayLike<number>).length === 0) {
    throw argError('seqLengths', 'an array of sequence lengths summing to nCtx', seqLengths);
  }
  if (batch !== 1) throw argError('seqLengths', `used with batch 1 (packed sequences share one row range; q's batch is ${batch})`, seqLengths);
  if (nQ !== nK) throw argError('seqLengths', `used with q and k of one length (packed self-attention; q has ${nQ} rows, k ${nK})`, seqLengths);
  const lens = seqLengths as ArrayLike<number>;
  const out = new Int32Array(lens.length);
  let sum = 0;
  for (let i = 0; i < lens.length; i++) {
    const x = lens[i];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) throw argError(`seqLengths[${i}]`, 'a non-negative integer', x);
    out[i] = x;
    sum += x;
  }
  if (sum !== nQ) throw argError('seqLengths', `lengths summing to nCtx (${nQ}; they sum to ${sum})`, seqLengths);
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
  /**
   * Packed sequences (batch 1, q and k of one length): lengths summing to nCtx; each sequence
   * attends only within itself, its positions restarting at 0 — separate calls in one.
   */
  seqLengths?: ArrayLike<number>;
  /** Aborts the call (its promise rejects with an AbortedError whose cause is the signal's reason). */
  signal?: AbortSignal;
  /**
   * An array of q's type (Float32Array; with dtype 'float16' q's half array type) of batch·nCtx·nEmbd values the result is written to (and returned as
   * `data`), instead of a new array: a caller that reuses it avoids allocating (and page
   * faulting) a fresh result per call. A tensor from createTensor() is written in place by
   * the CPU kernel. Must not overlap q, k or v.
   */
  out?: TensorArray;
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
  seqLengths: unknown;
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
  if (options === undefined) return { keyLengths: undefined, seqLengths: undefined, cache: undefined, signal: undefined, out: undefined, onProgress: undefined, lse: undefined };
  if (options === null || typeof options !== 'object') throw argError('forward options', 'an object or undefined', options);
  const o = checkKeys('forward options', options, allowed, NOT_YET_FORWARD_OPTIONS);
  const get = (key: string) => o[key];
  const onProgress = get('onProgress');
  if (onProgress !== undefined && typeof onProgress !== 'function') throw argError('onProgress', 'a function (fraction) => void', onProgress);
  return {
    keyLengths: get('keyLengths'),
    seqLengths: get('seqLengths'),
    cache: get('cache'),
    signal: checkSignal(get('signal')),
    out: get('out'),
    onProgress: onProgress as CallOptions['onProgress'],
    lse: get('lse'),
  };
}
