// Errors. Every error this library raises is a SparseAttentionError with a stable `code`;
// decisions inside the library (GPU → CPU fallback, splitting a call that does not fit)
// are taken on the class or code, never on message text. Messages name the op, the
// argument, the value received and what was expected, e.g. "SparseAttention: localAttnCtx
// must be a positive integer for mode 'local' (got 0)".

const OP = 'SparseAttention';

export type ErrorCode =
  | 'ERR_ARGUMENT'
  | 'ERR_MEMORY_LIMIT'
  | 'ERR_UNSUPPORTED'
  | 'ERR_DEVICE_LOST'
  | 'ERR_ABORTED'
  | 'ERR_DISPOSED'
  | 'ERR_WORKER'
  | 'ERR_STATE'
  | 'ERR_KERNEL';

/** Base class of every error the library raises; `code` is stable across versions. */
export class SparseAttentionError extends Error {
  /** Each subclass names its code once, here. */
  static readonly code: ErrorCode = 'ERR_KERNEL';
  readonly code: ErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message.startsWith(`${OP}:`) ? message : `${OP}: ${message}`, options);
    this.code = (new.target as typeof SparseAttentionError).code;
    this.name = new.target.name;
  }
}

/** A bad argument, option, tensor or shape (the message names which, the value and the expectation). */
export class ArgumentError extends SparseAttentionError {
  static readonly code = 'ERR_ARGUMENT';
}

/** The call needs more memory than the path can give (wasm32's 4 GiB, a layout too large to build); nothing ran. */
export class MemoryLimitError extends SparseAttentionError {
  static readonly code = 'ERR_MEMORY_LIMIT';
  constructor(message: string, readonly needed = NaN, readonly limit = NaN, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The requested path cannot run here or cannot run this call (no adapter, head dim too large for the device…). */
export class UnsupportedError extends SparseAttentionError {
  static readonly code = 'ERR_UNSUPPORTED';
}

/** The GPU device was lost, destroyed or failed during a call. */
export class DeviceLostError extends SparseAttentionError {
  static readonly code = 'ERR_DEVICE_LOST';
}

/** The call's AbortSignal fired; `cause` is the signal's reason. */
export class AbortedError extends SparseAttentionError {
  static readonly code = 'ERR_ABORTED';
  constructor(reason: unknown) {
    const why = reason instanceof Error ? reason.message : reason === undefined ? 'aborted' : String(reason);
    super(`the call was aborted (${why})`, { cause: reason });
  }
}

/** The instance was disposed (before or during the call). */
export class DisposedError extends SparseAttentionError {
  static readonly code = 'ERR_DISPOSED';
  constructor(message = 'this instance was disposed; create a new SparseAttention') {
    super(message);
  }
}

/** A CPU worker could not start, died or failed during a call. */
export class WorkerError extends SparseAttentionError {
  static readonly code = 'ERR_WORKER';
}

/** A call made in a state that does not allow it (e.g. forwardSync while forward() computes). */
export class StateError extends SparseAttentionError {
  static readonly code = 'ERR_STATE';
}

/** A kernel trapped or an internal invariant failed: a bug of this library, please report it. */
export class KernelError extends SparseAttentionError {
  static readonly code = 'ERR_KERNEL';
}

/** Renders a received value for an error message, short and unambiguous; never throws. */
export function describe(value: unknown): string {
  try {
    if (value === null) return 'null';
    if (value === undefined) return 'undefined';
    if (typeof value === 'string') return `'${value}'`;
    if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
    if (typeof value === 'symbol') return value.toString();
    if (typeof value === 'function') return 'a function';
    if (ArrayBuffer.isView(value)) {
      const n = (value as unknown as ArrayLike<number>).length;
      const detached = value.buffer.byteLength === 0 && value.byteLength === 0;
      return `${value.constructor.name}(${n})${detached ? ' with a detached buffer' : ''}`;
    }
    if (Array.isArray(value)) {
      const text = JSON.stringify(value);
      return text.length <= 60 ? text : `an array of length ${value.length}`;
    }
    const name = (value as object).constructor?.name;
    return name && name !== 'Object' ? `a ${name}` : 'an object';
  } catch {
    return 'a value that cannot be inspected';
  }
}

export function argError(arg: string, expectation: string, got: unknown): ArgumentError {
  return new ArgumentError(`${arg} must be ${expectation} (got ${describe(got)})`);
}

export function isPositiveInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x > 0;
}

export function checkPositiveInt(arg: string, x: unknown, context = ''): number {
  if (!isPositiveInt(x)) throw argError(arg, `a positive integer${context}`, x);
  return x;
}

/** The error of an aborted signal, as this library reports it. */
export function abortError(signal: AbortSignal): AbortedError {
  return new AbortedError(signal.reason);
}

/** Throws the library's AbortedError when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/**
 * Wraps an unexpected error from inside the library (a TypeError from a detached buffer, a
 * throwing getter) as an ArgumentError naming what was being read; library errors pass.
 */
export function asLibraryError(e: unknown, reading: string): SparseAttentionError {
  if (e instanceof SparseAttentionError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new ArgumentError(`${reading} could not be read (${msg})`, { cause: e });
}
