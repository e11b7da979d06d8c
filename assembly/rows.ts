// Moving rows between the tensors and the kernel's layouts: packing K and V (phase 1),
// Q in transposed and scaled, O out transposed and normalised. 4×4 transposes on SIMD builds.

/** Copies one row of `bytes` bytes (inline vector moves: memory.copy leaves the JIT code). */
// @ts-ignore: decorator
@inline export function copyRow(dst: usize, src: usize, bytes: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    const bytes16 = bytes & ~15;
    for (; i < bytes16; i += 16) v128.store(dst + i, v128.load(src + i));
  }
  for (; i < bytes; i += 4) store<f32>(dst + i, load<f32>(src + i));
}

/** dst[k][i] = src[i][k] for keys i < n (of 4), k < d; the 4 keys of a group interleaved. */
export function packKeys4(dst: usize, src: usize, stride: usize, n: i32, d: usize): void {
  let k: usize = 0;
  if (ASC_FEATURE_SIMD && n == 4) {
    for (; k + 4 <= d; k += 4) {
      transpose4x4(dst + (k << 4), 16, src + (k << 2), stride, f32x4.splat(1), false);
    }
  }
  for (; k < d; k++) {
    for (let i = 0; i < 4; i++) {
      store<f32>(dst + (k << 4) + (<usize>i << 2), i < n ? load<f32>(src + <usize>i * stride + (k << 2)) : 0);
    }
  }
}

/** dst[k][r] = src[r][k] · scale for r < rows, 0 for rows <= r < bs. */
export function loadQueryT(dst: usize, src: usize, stride: usize, rows: i32, d: i32, bs: i32, scale: f32): void {
  const ubs = <usize>bs;
  let r = 0;
  if (ASC_FEATURE_SIMD) {
    const sc = f32x4.splat(scale);
    const d4 = d & ~3;
    for (; r + 4 <= rows; r += 4) {
      const s0 = src + <usize>r * stride;
      let k = 0;
      for (; k < d4; k += 4) {
        // rows r..r+3 × dims k..k+3 -> dims × rows
        transpose4x4(dst + (<usize>k * ubs + <usize>r) * 4, ubs * 4, s0 + (<usize>k << 2), stride, sc, true);
      }
      for (; k < d; k++) {
        for (let i = 0; i < 4; i++) {
          store<f32>(dst + (<usize>k * ubs + <usize>(r + i)) * 4, load<f32>(s0 + <usize>i * stride + (<usize>k << 2)) * scale);
        }
      }
    }
  }
  for (; r < bs; r++) {
    const s0 = src + <usize>r * stride;
    const live = r < rows;
    for (let k = 0; k < d; k++) {
      store<f32>(dst + (<usize>k * ubs + <usize>r) * 4, live ? load<f32>(s0 + (<usize>k << 2)) * scale : 0);
    }
  }
}

/** dst[r][k] = ot[k][r] · inv[r] for r < rows. */
export function storeOutput(dst: usize, stride: usize, ot: usize, inv: usize, rows: i32, d: i32, bs: i32): void {
  const ubs = <usize>bs;
  let r = 0;
  if (ASC_FEATURE_SIMD) {
    const d4 = d & ~3;
    for (; r + 4 <= rows; r += 4) {
      const iv = v128.load(inv + (<usize>r << 2));
      const d0 = dst + <usize>r * stride;
      let k = 0;
      for (; k < d4; k += 4) {
        // dims k..k+3 × rows r..r+3 (times 1 / l_i per row) -> rows × dims
        transpose4x4(d0 + (<usize>k << 2), stride, ot + (<usize>k * ubs + <usize>r) * 4, ubs * 4, iv, true);
      }
      for (; k < d; k++) {
        for (let i = 0; i < 4; i++) {
          store<f32>(d0 + <usize>i * stride + (<usize>k << 2), load<f32>(ot + (<usize>k * ubs + <usize>(r + i)) * 4) * load<f32>(inv + (<usize>(r + i) << 2)));
        }
      }
    }
  }
  for (; r < rows; r++) {
    const d0 = dst + <usize>r * stride;
    const iv = load<f32>(inv + (<usize>r << 2));
    for (let k = 0; k < d; k++) {
      store<f32>(d0 + (<usize>k << 2), load<f32>(ot + (<usize>k * ubs + <usize>r) * 4) * iv);
    }
  }
}

// GQA row groups (SEQ qHeads > 1): row r of a sequence is query row r / G of the group's
// head r % G; a query row's G heads are adjacent, d floats apart, in q and in the output.

/** Byte offset of grouped row r. */
// @ts-ignore: decorator
@inline function groupRow(base: usize, stride: usize, G: i32, r: i32, d: i32): usize {
  return base + <usize>(r / G) * stride + <usize>(r % G) * (<usize>d << 2);
}

/** loadQueryT for the grouped rows row0 … row0 + rows - 1 (of base, query row stride `stride`). */
export function loadQueryGroupT(dst: usize, base: usize, stride: usize, G: i32, row0: i32, rows: i32, d: i32, bs: i32, scale: f32): void {
  const ubs = <usize>bs;
  let r = 0;
  if (ASC_FEATURE_SIMD) {
    const sc = f32x4.splat(scale);
    const d4 = d & ~3;
    for (; r + 4 <= rows; r += 4) {
      const s0 = groupRow(base, stride, G, row0 + r, d);
      const s1 = groupRow(base, stride, G, row0 + r + 1, d);
      const s2 = groupRow(base, stride, G, row0 + r + 2, d);
      const s3 = groupRow(base, stride, G, row0 + r + 3, d);
      let k = 0;
      for (; k < d4; k += 4) {
        const o = dst + (<usize>k * ubs + <usize>r) * 4;
        const kb = <usize>k << 2;
        transpose4(o, o + ubs * 4, o + ubs * 8, o + ubs * 12, s0 + kb, s1 + kb, s2 + kb, s3 + kb, sc, true);
      }
      for (; k < d; k++) {
        const o = dst + (<usize>k * ubs + <usize>r) * 4;
        const kb = <usize>k << 2;
        store<f32>(o, load<f32>(s0 + kb) * scale);
        store<f32>(o, load<f32>(s1 + kb) * scale, 4);
        store<f32>(o, load<f32>(s2 + kb) * scale, 8);
        store<f32>(o, load<f32>(s3 + kb) * scale, 12);
      }
    }
  }
  for (; r < bs; r++) {
    const live = r < rows;
    const s0 = live ? groupRow(base, stride, G, row0 + r, d) : 0;
    for (let k = 0; k < d; k++) {
      store<f32>(dst + (<usize>k * ubs + <usize>r) * 4, live ? load<f32>(s0 + (<usize>k << 2)) * scale : 0);
    }
  }
}

/** storeOutput for the grouped rows row0 … row0 + rows - 1. */
export function storeOutputGroup(base: usize, stride: usize, G: i32, row0: i32, ot: usize, inv: usize, rows: i32, d: i32, bs: i32): void {
  const ubs = <usize>bs;
  let r = 0;
  if (ASC_FEATURE_SIMD) {
    const d4 = d & ~3;
    for (; r + 4 <= rows; r += 4) {
      const iv = v128.load(inv + (<usize>r << 2));
      const o0 = groupRow(base, stride, G, row0 + r, d);
      const o1 = groupRow(base, stride, G, row0 + r + 1, d);
      const o2 = groupRow(base, stride, G, row0 + r + 2, d);
      const o3 = groupRow(base, stride, G, row0 + r + 3, d);
      let k = 0;
      for (; k < d4; k += 4) {
        const s = ot + (<usize>k * ubs + <usize>r) * 4;
        const kb = <usize>k << 2;
        transpose4(o0 + kb, o1 + kb, o2 + kb, o3 + kb, s, s + ubs * 4, s + ubs * 8, s + ubs * 12, iv, true);
      }
      for (; k < d; k++) {
        const s = ot + (<usize>k * ubs + <usize>r) * 4;
        const kb = <usize>k << 2;
        store<f32>(o0 + kb, load<f32>(s) * load<f32>(inv + (<usize>r << 2)));
        store<f32>(o1 + kb, load<f32>(s, 4) * load<f32>(inv + (<usize>r << 2), 4));
        store<f32>(o2 + kb, load<f32>(s, 8) * load<f32>(inv + (<usize>r << 2), 8));
        store<f32>(o3 + kb, load<f32>(s, 12) * load<f32>(inv + (<usize>r << 2), 12));
      }
    }
  }
  for (; r < rows; r++) {
    const o0 = groupRow(base, stride, G, row0 + r, d);
    const iv = load<f32>(inv + (<usize>r << 2));
    for (let k = 0; k < d; k++) {
      store<f32>(o0 + (<usize>k << 2), load<f32>(ot + (<usize>k * ubs + <usize>r) * 4) * iv);
    }
  }
}

/**
 * Stores at dst + j·dstStep the column j of the 4×4 f32 block whose rows are at
 * src + i·srcStep, each row times `scale` first when `scaled` (a literal).
 */
// @ts-ignore: decorator
@inline function transpose4x4(dst: usize, dstStep: usize, src: usize, srcStep: usize, scale: v128, scaled: bool): void {
  transpose4(dst, dst + dstStep, dst + 2 * dstStep, dst + 3 * dstStep, src, src + srcStep, src + 2 * srcStep, src + 3 * srcStep, scale, scaled);
}

/** transpose4x4 with its 4 destination rows w, x, y, z and source rows a, b, c, e anywhere. */
// @ts-ignore: decorator
@inline function transpose4(w: usize, x: usize, y: usize, z: usize, a0: usize, b0: usize, c0: usize, e0: usize, scale: v128, scaled: bool): void {
  let a = v128.load(a0);
  let b = v128.load(b0);
  let c = v128.load(c0);
  let e = v128.load(e0);
  if (scaled) {
    a = f32x4.mul(a, scale);
    b = f32x4.mul(b, scale);
    c = f32x4.mul(c, scale);
    e = f32x4.mul(e, scale);
  }
  const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
  const t2 = v128.shuffle<f32>(c, e, 0, 4, 1, 5);
  const t3 = v128.shuffle<f32>(c, e, 2, 6, 3, 7);
  v128.store(w, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
  v128.store(x, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
  v128.store(y, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
  v128.store(z, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
}
