// IEEE half (binary16) bits ↔ numbers in JS, exact: for the reference (which widens the
// caller's halves) and for tests and callers without Float16Array (Node 20/22) that build
// Uint16Array tensors. The kernels convert in WebAssembly (assembly/half.ts), not here.

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** The value of half bits h (0 … 0xffff): exact, subnormals, ±Infinity and NaN included. */
export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/**
 * Half bits of x, rounded to nearest even (through f32, as the kernel's output is: x is
 * first rounded to f32, which is exact for every f32 the kernel produces). NaN → 0x7e00
 * with the sign and the top of the f32 payload.
 */
export function numberToHalf(x: number): number {
  F32[0] = x;
  const f = U32[0];
  const sign = (f >>> 16) & 0x8000;
  const a = f & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00 | ((a >>> 13) & 0x3ff);
  if (a >= (127 + 16) << 23) return sign | 0x7c00;
  const v = Math.abs(Math.fround(x));
  if (v < 2 ** -14) return sign | roundEven(v * 2 ** 24); // subnormal: units of 2^-24 (0x400 = 2^-14 itself)
  const e = Math.floor(Math.log2(v));
  // the mantissa scaled to 11 bits, rounded; a carry to 2048 moves to the next exponent
  const exp = v / 2 ** e >= 2 ? e + 1 : v / 2 ** e < 1 ? e - 1 : e;
  const m = roundEven((v / 2 ** exp) * 1024);
  const bits = ((exp + 15) << 10) + (m - 1024);
  return sign | Math.min(bits, 0x7c00);
}

function roundEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Half bits of every value of xs (rounded to nearest even). */
export function toHalfBits(xs: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = numberToHalf(xs[i]);
  return out;
}

/** The values of half bits (exact). */
export function fromHalfBits(h: ArrayLike<number>): Float64Array {
  const out = new Float64Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = halfToNumber(h[i]);
  return out;
}
