// Whether a call's arrays are still whole when it runs: a buffer transferred (detached) or
// an array swapped for one of another size since the call was made is the caller's error,
// raised before any work is handed out. Used by the facade and by every backend.
import { ArgumentError } from './errors.js';

export function isDetached(data: ArrayBufferView): boolean {
  return data.byteLength === 0 && data.buffer.byteLength === 0;
}

/**
 * Checks, when a call starts computing, that the arrays it took are still whole: a buffer
 * transferred (detached) or resized since the call was made is an ArgumentError, raised
 * before any work is handed out.
 */
export function checkStillWhole(arrays: Record<string, Float32Array | Uint16Array | undefined>, length: number): void {
  for (const [name, a] of Object.entries(arrays)) {
    if (a === undefined) continue;
    if (a.length !== length) {
      throw new ArgumentError(
        `${name} changed after the call was made: it holds ${a.length} values, the call needs ${length}` +
          `${isDetached(a) ? ' (its buffer was detached, e.g. transferred to a worker)' : ''}; ` +
          'keep inputs and out unchanged until the call settles',
      );
    }
  }
}

