// Block-sparse attention forward pass, flash-style (FlashAttention-2 loop order), f32.
// One workgroup per (sequence, query tile of BM rows). A sequence is one (batch, head[,
// group]) problem whose rows sit at a fixed element stride in q/k/v/o: nEmbd for the band
// modes, L·nEmbd for 'strided' (OpenAI's regrouping, read in place, no gather pass).
// Per query tile we walk the key blocks of its query block in the CSR layout, in key
// tiles of BN rows:
//   S = Q·Kᵀ (scale·log2 e folded into Q or into the exponent), masked on partial tiles only,
//   m_new = max(m_i, rowmax S), P = 2^(S - m_new), l_i = l_i·α + rowsum P,
//   O = O·α + P·V with α = 2^(m_i - m_new), and O / l_i once at the end.
// Thread tile: RPT query rows × CPT key columns of S, and the same RPT rows × DPT dims
// of O: the vec4 chunks j·TPR + cg of a row (j < DPT/4), so that the 8 lanes of a row
// group read 8 consecutive vec4s of a V row, one per bank group. TPR = 8 threads share a
// row group, so the row max is a reduction over 8 lanes. l_i stays a per-thread partial sum
// (every lane of a row group applies the same α) and is reduced once.
// The host unrolls every loop over the register-tile sizes (RPT, CPT, DPT/4, NVL, NWB, …)
// and the chunk-pair loops (BN/8, and DP/8 up to head dim 64): register arrays are then
// indexed by constants only, and no operand buffer is carried from one pair to the next.
// see: Dao, "FlashAttention-2" (2023); Child et al., "Sparse Transformers" (2019);
// onnxruntime contrib_ops/webgpu/bert/flash_attention.wgsl.template.
//
// Compile-time parameters. The host (src/backends/webgpu/program.ts) rewrites the first four
// constants and keeps one branch of each //#if: the kernel variant
// (src/backends/webgpu/variants.ts) fixes BM, BN, SUBGROUPS, Q_GLOBAL and Q_TILE; the call's
// block size and head dim fix BS, DP, VEC4 and PADDED.
const BS: u32 = 64u;  // layout block size (8..128)
const BM: u32 = 64u;  // query rows per workgroup, divides BS (≤ 128)
const BN: u32 = 64u;  // key rows per tile, divides BS (≤ 64)
const DP: u32 = 64u;  // head dim padded to a multiple of 32
//#param SUBGROUPS  row max and sum by subgroup shuffles (else through workgroup memory)
//#param VEC4       head dim % 4 == 0: tensors bound as vec4 arrays; the next tile's K and V are
//                  loaded into registers during this tile, so that their global latency
//                  overlaps softmax and P·V, and V is stored after S
//#param Q_GLOBAL   (VEC4) Q is not staged in workgroup memory: the S loop reads it from the
//                  storage buffer (L1-resident: the same BM rows every key tile), or with Q_TILE
//                  from the tile's copy; the scale is applied in the exponent,
//                  P = 2^(fma(S, scale, -m_new)) (m_new from rowmax S · scale: the scale is > 0).
//                  The 48 KiB then hold K/P and V of 128-row query tiles: 8 warps per workgroup
//                  instead of 4. (NVIDIA's Vulkan driver gives compute ~64 KiB of shared memory
//                  per SM, so a 48 KiB workgroup runs alone on its SM.)
//#param Q_TILE     (Q_GLOBAL, not PADDED, and Q fits beside K) every tile stages Q into the
//                  workgroup memory K leaves free during S (P's second half and V), so that the
//                  S loop reads it with shared-memory loads at immediate offsets instead of
//                  bounds-checked global loads; V is then stored after the barrier that ends S
//#param PADDED     head dim < DP: the S loop over global Q stops at head_dim / 4 (a `let`
//                  bound, ~3% slower than the constant one, so only where needed)
//#param P_VEC4     CPT % 4 == 0 (BN a multiple of 32): each lane stores its P columns as vec4s
//#param XATTN      inference shapes: kvHeads < heads, nQ != nK, K/V in a KV cache's buffers
//#param MODS       score modifiers (softcap, ALiBi, sinks) and the lse output, set by uniforms
//#param F16        q, k, v and o hold IEEE halves, read into f32 and written from f32 (ld4/st4 below)
//#param F16_NATIVE (F16, shader-f16) f16 storage arrays; else u32 words of two halves (core WGSL pack/unpack)
//#if XATTN
// XATTN: K/V have their own addressing (kvHeads < heads, a KV cache's buffers); the n_q query
// rows of a batch item are aligned bottom-right against the keys; for 'strided', the groups
// of a cross-attention (query rows from group row a, layout shifted by a − A). Uniforms, not
// constants: one pipeline serves every ratio, offset and cache. With the flag off the text
// is the self-attention kernel's, unchanged.
//#endif
//#if MODS
// MODS: the final logits in base-2 units (log2 e folded into every constant): S·scale, then
// softcap·tanh(S / softcap) with the cap in base-2 units (0: off), then the ALiBi bias
// −slope·|Δposition|; the sink's term 2^(sink − m) joins the row's denominator only; lse in
// natural log, (m + log2 l)·ln 2. Uniforms and one storage array, not constants: one pipeline
// serves every combination. The scale is applied before the row max (any scale works).
//#endif

const RPT: u32 = 4u;               // query rows per thread (8 spills registers)
const TPR: u32 = 8u;               // threads per row group
const CPT: u32 = BN / TPR;         // key columns per thread
const DPT: u32 = DP / TPR;         // output dims per thread (a multiple of 4)
const WG: u32 = BM / RPT * TPR;    // threads per workgroup
const MW: u32 = (BS + 31u) / 32u;  // mask words per block row
const NWB: u32 = (BN + 31u) / 32u; // mask words per tile row
const NVL: u32 = (BN * DP / 4u + WG - 1u) / WG; // K and V vec4s each thread loads per tile
const NQL: u32 = BM * DP / 4u / WG;             // (Q_TILE) Q vec4s each thread stages per tile

struct Params {
  batch: u32, heads: u32, groups: u32, n_ctx: u32,
  n_embd: u32, head_dim: u32, step: u32, tiles_per_seq: u32,
  n_seq: u32, grid_x: u32, layout_info: u32, key_lengths: u32,
  scale: f32, neg_inf: f32, _pad0: u32, _pad1: u32, // neg_inf: -inf (WGSL has no literal)
//#if XATTN
  // n_q: query rows per batch item; q_off = nK - nQ ('strided' only: >= 0); K/V row r of
  // sequence (b, kv head, group g) at element b·kb_b + kvh·kb_h + g·kb_g + r·k_stride
  n_q: u32, q_off: u32, kv_heads: u32, kb_b: u32,
  kb_h: u32, kb_g: u32, k_stride: u32, kv_b0: u32, // kv_b0: the chunk's first batch item in K/V
//#endif
//#if MODS
  // softcap·log2 e (0: off); mod_flags: 1 ALiBi, 2 sinks, 4 lse; mods_v[h0 + h]: the chunk's
  // head h's slope·log2 e, mods_v[all_heads + h0 + h] its sink·log2 e; lse_rows: query tokens
  // of a (batch item, head) in lse_o; q_dist: (XATTN, not regrouped) nK − nQ, the position of
  // query row 0 among the keys
  softcap: f32, mod_flags: u32, h0: u32, all_heads: u32,
  lse_rows: u32, q_dist: u32, _pad2: u32, _pad3: u32,
//#endif
}

@group(0) @binding(0) var<uniform> prm: Params;
// meta_w: u32 words: headLayout [heads] · keyLengths [batch] · layoutInfo [nLayouts][4]
// (rowPtr, cols, maskIds, maskWords offsets) · CSR arrays · mask bits [nMasks][BS][MW]
@group(0) @binding(1) var<storage, read> meta_w: array<u32>;
// q, k, v, o: [batch, nCtx, nEmbd] row-major f32 (a batch × head chunk of the call)
// (VEC4: read and written as vec4; element offsets are then multiples of 4)
//#if F16
// F16: the tensors' halves, read and written through the functions below at the f32 kernel's
// indices (vec4s with VEC4, else elements); everything else stays f32
//#if F16_NATIVE && VEC4
@group(0) @binding(2) var<storage, read> q: array<vec4<f16>>;
@group(0) @binding(3) var<storage, read> k: array<vec4<f16>>;
@group(0) @binding(4) var<storage, read> v: array<vec4<f16>>;
@group(0) @binding(5) var<storage, read_write> o: array<vec4<f16>>;
fn q4(i: u32) -> vec4<f32> { return vec4<f32>(q[i]); }
fn k4(i: u32) -> vec4<f32> { return vec4<f32>(k[i]); }
fn v4(i: u32) -> vec4<f32> { return vec4<f32>(v[i]); }
fn st4(i: u32, x: vec4<f32>) { o[i] = vec4<f16>(x); }
//#endif
//#if !F16_NATIVE && VEC4
// a vec4 of halves is two u32 words
@group(0) @binding(2) var<storage, read> q: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> k: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read> v: array<vec2<u32>>;
@group(0) @binding(5) var<storage, read_write> o: array<vec2<u32>>;
fn h4(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
fn q4(i: u32) -> vec4<f32> { return h4(q[i]); }
fn k4(i: u32) -> vec4<f32> { return h4(k[i]); }
fn v4(i: u32) -> vec4<f32> { return h4(v[i]); }
fn st4(i: u32, x: vec4<f32>) { o[i] = vec2<u32>(pack2x16float(x.xy), pack2x16float(x.zw)); }
//#endif
//#if F16_NATIVE && !VEC4
@group(0) @binding(2) var<storage, read> q: array<f16>;
@group(0) @binding(3) var<storage, read> k: array<f16>;
@group(0) @binding(4) var<storage, read> v: array<f16>;
@group(0) @binding(5) var<storage, read_write> o: array<f16>;
fn q1(i: u32) -> f32 { return f32(q[i]); }
fn k1(i: u32) -> f32 { return f32(k[i]); }
fn v1(i: u32) -> f32 { return f32(v[i]); }
fn st1(i: u32, x: f32) { o[i] = f16(x); }
//#endif
//#if !F16_NATIVE && !VEC4
// element i is half i % 2 of word i / 2. Two threads can write the two halves of one word
// (odd head dims), so a store replaces its own half atomically.
@group(0) @binding(2) var<storage, read> q: array<u32>;
@group(0) @binding(3) var<storage, read> k: array<u32>;
@group(0) @binding(4) var<storage, read> v: array<u32>;
@group(0) @binding(5) var<storage, read_write> o: array<atomic<u32>>;
fn q1(i: u32) -> f32 { return unpack2x16float(q[i / 2u])[i % 2u]; }
fn k1(i: u32) -> f32 { return unpack2x16float(k[i / 2u])[i % 2u]; }
fn v1(i: u32) -> f32 { return unpack2x16float(v[i / 2u])[i % 2u]; }
fn st1(i: u32, x: f32) {
  let sh = (i % 2u) * 16u;
  atomicAnd(&o[i / 2u], ~(0xffffu << sh));
  atomicOr(&o[i / 2u], (pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu) << sh);
}
//#endif
//#else
//#if VEC4
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> o: array<vec4<f32>>;
//#else
@group(0) @binding(2) var<storage, read> q: array<f32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> o: array<f32>;
//#endif
//#endif
// vflag[0] != 0: V holds an Inf or NaN somewhere (shaders/vscan.wgsl, run just before)
@group(0) @binding(6) var<storage, read> vflag: array<u32>;
//#if MODS
// mods_v: slopes [all_heads] then sinks [all_heads], base-2 units; lse_o: [batch][heads][lse_rows] of the chunk
@group(0) @binding(7) var<storage, read> mods_v: array<f32>;
@group(0) @binding(8) var<storage, read_write> lse_o: array<f32>;
//#endif

// Workgroup memory, all row-major in vec4 chunks, the chunk index of a row rotated by its
// row group (Q, P) or key group (K), (c4 + group) mod chunks, so that the lanes of a warp
// reading one chunk of different rows hit distinct banks (a warp's 128-bit loads are served
// together: distinct addresses in one bank serialise). The hot loads spell these indices
// out inline: Tint's range analysis then proves them in bounds and Dawn adds no clamp
// (robustness); it does not look through function calls (qk_idx/kv_idx: stores only).
//   q_s [BM][DP] (not with Q_GLOBAL) · sm: K [BN][DP] during S, then P [BM][BN] (from 0),
//   and V [BN][DP] (from VOFF); with Q_TILE, Q [BM][DP] from QOFF (after K) during S
//   BM=BN=DP=64: 3 tiles · 64 · 64 f32 = 48 KiB (+ red_s BM·8 f32 = 2 KiB without subgroups);
//   Q_GLOBAL, BM=128, BN=DP=64: P 32 KiB + V 16 KiB = 48 KiB (Q_TILE: K 16 + Q 32 during S)
//#if !Q_GLOBAL
var<workgroup> q_s: array<vec4<f32>, BM * DP / 4u>;
//#endif
const VOFF: u32 = max(BN * DP, BM * BN) / 4u;
const QOFF: u32 = BN * DP / 4u; // (Q_TILE: the host checks QOFF + BM·DP/4 <= VOFF + BN·DP/4)
var<workgroup> sm: array<vec4<f32>, VOFF + BN * DP / 4u>;
//#if !SUBGROUPS
var<workgroup> red_s: array<f32, BM * TPR>;
//#endif

fn qk_idx(row: u32, c4: u32) -> u32 { return row * (DP / 4u) + (c4 + (row / RPT) % 8u) % (DP / 4u); }
fn kv_idx(row: u32, c4: u32) -> u32 { return row * (DP / 4u) + (c4 + (row / CPT) % 8u) % (DP / 4u); }

// Max over the TPR lanes of a row group; NaN may or may not win (it reaches P anyway).
fn row_max(x: f32, rg: u32, cg: u32, i: u32) -> f32 {
//#if SUBGROUPS
  var m = max(x, subgroupShuffleXor(x, 1u));
  m = max(m, subgroupShuffleXor(m, 2u));
  return max(m, subgroupShuffleXor(m, 4u));
//#else
  red_s[(rg * RPT + i) * TPR + cg] = x;
  workgroupBarrier();
  var m = red_s[(rg * RPT + i) * TPR];
  for (var j = 1u; j < TPR; j++) { m = max(m, red_s[(rg * RPT + i) * TPR + j]); }
  workgroupBarrier();
  return m;
//#endif
}

fn row_sum(x: f32, rg: u32, cg: u32, i: u32) -> f32 {
//#if SUBGROUPS
  var s = x + subgroupShuffleXor(x, 1u);
  s += subgroupShuffleXor(s, 2u);
  return s + subgroupShuffleXor(s, 4u);
//#else
  red_s[(rg * RPT + i) * TPR + cg] = x;
  workgroupBarrier();
  var s = 0.0;
  for (var j = 0u; j < TPR; j++) { s += red_s[(rg * RPT + i) * TPR + j]; }
  workgroupBarrier();
  return s;
//#endif
}

// s + q·k as an explicit fma chain (s += dot(q, k) costs a mul, 3 fma and an add per 4 MACs)
fn mac(s: f32, q: vec4<f32>, k: vec4<f32>) -> f32 {
  return fma(q.w, k.w, fma(q.z, k.z, fma(q.y, k.y, fma(q.x, k.x, s))));
}

// Allowed bits of tile row `row`, tile columns w·32 … w·32+31 (block column col0 = the
// first of them): the token mask (if any) AND column < ncols (keys past nk are masked).
fn tile_bits(mask_id: i32, mask0: u32, row: u32, col0: u32, ncols: u32, w: u32) -> u32 {
  var bits = 0xffffffffu;
  if (mask_id >= 0) { bits = meta_w[mask0 + row * MW + col0 / 32u] >> (col0 % 32u); }
  let lim = select(0u, ncols - w * 32u, ncols > w * 32u);
  if (lim < 32u) { bits &= (1u << lim) - 1u; }
  return bits;
}

// Bit c of a tile row's allowed bits (constant array indices only: the host unrolls the callers).
fn allowed(bits: array<u32, NWB>, c: u32) -> bool {
  return ((select(bits[0], bits[NWB - 1u], c >= 32u) >> (c % 32u)) & 1u) != 0u;
}

// First key of tile `sub` of CSR entry e (0xffffffff past the row's last entry).
fn tile_key0(cols0: u32, e: u32, e1: u32, sub: u32) -> u32 {
  if (e >= e1) { return 0xffffffffu; }
  return meta_w[cols0 + e] * BS + sub * BN;
}

// ---- Stages of `main`. //#inline: the host pastes the body where it is called, so these read
// main's locals. As real functions they would cost registers (the K/V prefetch as a function
// took 239 registers instead of 214 on the H100, +1.7%), and Tint's range analysis does not
// look through calls, so their workgroup indices would get clamps.

// q_s = Q · scale (zero past nq and past head_dim)
//#inline
fn stage_q() {
//#if VEC4
  for (var i = t; i < BM * DP / 4u; i += WG) {
    let r = i / (DP / 4u);
    let d4 = i % (DP / 4u);
    var x = vec4<f32>(0.0);
//#if F16
    if (row0 + r < nq && d4 * 4u < hd) { x = q4((base + (row0 + r) * stride) / 4u + d4) * prm.scale; }
//#else
    if (row0 + r < nq && d4 * 4u < hd) { x = q[(base + (row0 + r) * stride) / 4u + d4] * prm.scale; }
//#endif
    q_s[qk_idx(r, d4)] = x;
  }
//#else
  for (var i = t; i < BM * DP; i += WG) {
    let r = i / DP;
    let d = i % DP;
    var x = 0.0;
//#if F16
    if (row0 + r < nq && d < hd) { x = q1(base + (row0 + r) * stride + d) * prm.scale; }
//#else
    if (row0 + r < nq && d < hd) { x = q[base + (row0 + r) * stride + d] * prm.scale; }
//#endif
    q_s[qk_idx(r, d / 4u)][d % 4u] = x;
  }
//#endif
}

// (VEC4) K and V rows key0 … key0 + BN - 1 of the sequence into registers; rows at or past
// nk (and a key0 of 0xffffffff: no next tile) read as zeros
//#inline
fn load_kv(key0: u32) {
  for (var u = 0u; u < NVL; u++) {
    let i = t + u * WG;
    let c = i / (DP / 4u);
    let d4 = i % (DP / 4u);
    k_pre[u] = vec4<f32>(0.0);
    v_pre[u] = vec4<f32>(0.0);
    if (i < BN * DP / 4u && key0 < nk && c < nk - key0 && d4 * 4u < hd) {
//#if XATTN
      let at = (kbase + (key0 + c) * kstride) / 4u + d4;
//#else
      let at = (base + (key0 + c) * stride) / 4u + d4;
//#endif
//#if F16
      k_pre[u] = k4(at);
//#else
      k_pre[u] = k[at];
//#endif
//#if F16
      v_pre[u] = v4(at);
//#else
      v_pre[u] = v[at];
//#endif
    }
  }
}

// The tile's K into workgroup memory (VEC4: from the registers loaded during the previous
// tile; V follows after S), with Q_TILE this query tile's Q beside it; without VEC4, K and V
// from global memory (keys >= nk are never read: zero rows)
//#inline
fn store_kv() {
//#if VEC4
  for (var u = 0u; u < NVL; u++) {
    let i = t + u * WG;
    if (i < BN * DP / 4u) { sm[kv_idx(i / (DP / 4u), i % (DP / 4u))] = k_pre[u]; }
  }
//#if Q_TILE
  // Q of this query tile (rows past nq: row nq - 1), from L1 after the first tile
  for (var u = 0u; u < NQL; u++) {
    let i = t + u * WG;
    let r = i / (DP / 4u);
//#if F16
    sm[QOFF + qk_idx(r, i % (DP / 4u))] = q4((base + min(row0 + r, nq - 1u) * stride) / 4u + i % (DP / 4u));
//#else
    sm[QOFF + qk_idx(r, i % (DP / 4u))] = q[(base + min(row0 + r, nq - 1u) * stride) / 4u + i % (DP / 4u)];
//#endif
  }
//#endif
//#else
  for (var i = t; i < BN * DP; i += WG) {
    let c = i / DP;
    let d = i % DP;
    var kx = 0.0;
    var vx = 0.0;
    if (c < ncols && d < hd) {
//#if XATTN
      let at = kbase + (key0 + c) * kstride + d;
//#else
      let at = base + (key0 + c) * stride + d;
//#endif
//#if F16
      kx = k1(at);
//#else
      kx = k[at];
//#endif
//#if F16
      vx = v1(at);
//#else
      vx = v[at];
//#endif
    }
    sm[kv_idx(c, d / 4u)][d % 4u] = kx;
    sm[VOFF + c * (DP / 4u) + d / 4u][d % 4u] = vx;
  }
//#endif
}

// (VEC4) V of this tile from the registers into workgroup memory
//#inline
fn store_v() {
  for (var u = 0u; u < NVL; u++) {
    if (t + u * WG < BN * DP / 4u) { sm[VOFF + t + u * WG] = v_pre[u]; }
  }
}

// S = Q·Kᵀ for rows rg·RPT + i, columns cg·CPT + j. The chunk loops load the next chunk's
// operands before this chunk's FMAs (two buffers, a pair of chunks an iteration: the driver
// issues each chunk's loads at the top and waits on them otherwise); the pair loop counts
// c2++ so that Tint proves its indices in bounds.
//#inline
fn scores() {
  for (var i = 0u; i < RPT; i++) { for (var j = 0u; j < CPT; j++) { s[i][j] = 0.0; } }
//#if Q_GLOBAL && !PADDED
  var qa: array<vec4<f32>, RPT>;
//#if Q_TILE
  for (var i = 0u; i < RPT; i++) { qa[i] = sm[QOFF + (rg * RPT + i) * (DP / 4u) + rg % 8u]; }
//#else
//#if F16
  for (var i = 0u; i < RPT; i++) { qa[i] = q4(qrow[i]); }
//#else
  for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i]]; }
//#endif
//#endif
  for (var c2 = 0u; c2 < DP / 8u; c2++) {
    let c4 = c2 * 2u;
    var qb: array<vec4<f32>, RPT>;
//#if Q_TILE
    for (var i = 0u; i < RPT; i++) { qb[i] = sm[QOFF + (rg * RPT + i) * (DP / 4u) + (c4 + 1u + rg % 8u) % (DP / 4u)]; }
//#else
//#if F16
    for (var i = 0u; i < RPT; i++) { qb[i] = q4(qrow[i] + c4 + 1u); }
//#else
    for (var i = 0u; i < RPT; i++) { qb[i] = q[qrow[i] + c4 + 1u]; }
//#endif
//#endif
    for (var j = 0u; j < CPT; j++) {
      let kv = sm[(cg * CPT + j) * (DP / 4u) + (c4 + cg) % (DP / 4u)];
      for (var i = 0u; i < RPT; i++) { s[i][j] = mac(s[i][j], qa[i], kv); }
    }
//#if Q_TILE
    for (var i = 0u; i < RPT; i++) { qa[i] = sm[QOFF + (rg * RPT + i) * (DP / 4u) + (c4 + 2u + rg % 8u) % (DP / 4u)]; }
//#else
//#if F16
    for (var i = 0u; i < RPT; i++) { qa[i] = q4(qrow[i] + (c4 + 2u) % (DP / 4u)); }
//#else
    for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i] + (c4 + 2u) % (DP / 4u)]; }
//#endif
//#endif
    for (var j = 0u; j < CPT; j++) {
      let kv = sm[(cg * CPT + j) * (DP / 4u) + (c4 + 1u + cg) % (DP / 4u)];
      for (var i = 0u; i < RPT; i++) { s[i][j] = mac(s[i][j], qb[i], kv); }
    }
  }
//#endif
//#if Q_GLOBAL && PADDED
  // (a `let` loop bound: the padding chunks are not read)
  for (var c4 = 0u; c4 < hd / 4u; c4++) {
    var qv: array<vec4<f32>, RPT>;
//#if F16
    for (var i = 0u; i < RPT; i++) { qv[i] = q4(qrow[i] + c4); }
//#else
    for (var i = 0u; i < RPT; i++) { qv[i] = q[qrow[i] + c4]; }
//#endif
    for (var j = 0u; j < CPT; j++) {
      let kv = sm[(cg * CPT + j) * (DP / 4u) + (c4 + cg) % (DP / 4u)];
      for (var i = 0u; i < RPT; i++) { s[i][j] = mac(s[i][j], qv[i], kv); }
    }
  }
//#endif
//#if !Q_GLOBAL
  for (var c4 = 0u; c4 < DP / 4u; c4++) {
    var qv: array<vec4<f32>, RPT>;
    for (var i = 0u; i < RPT; i++) { qv[i] = q_s[(rg * RPT + i) * (DP / 4u) + (c4 + rg % 8u) % (DP / 4u)]; }
    for (var j = 0u; j < CPT; j++) {
      let kv = sm[(cg * CPT + j) * (DP / 4u) + (c4 + cg) % (DP / 4u)];
      for (var i = 0u; i < RPT; i++) { s[i][j] = mac(s[i][j], qv[i], kv); }
    }
  }
//#endif
}

//#if MODS
// (MODS) S into final base-2 logits: the scale (Q_GLOBAL: S is unscaled; else Q was scaled),
// the soft cap (tanh's argument clamped: |x| > 15 is ±1 in f32, and some tanh lowerings
// overflow to NaN far beyond), the ALiBi bias of the rows' distance in tokens
//#inline
fn modify_scores() {
  for (var i = 0u; i < RPT; i++) {
    let dq = i32(qd0 + row0 + rg * RPT + i);
    for (var j = 0u; j < CPT; j++) {
      var x = s[i][j];
//#if Q_GLOBAL
      x *= prm.scale;
//#endif
      if (cap > 0.0) { x = cap * tanh(clamp(x / cap, -15.0, 15.0)); }
      s[i][j] = x - slope * f32(abs(dq - i32(key0 + cg * CPT + j)));
    }
  }
}

//#endif
// Allowed bits of this thread's rows over the tile's columns, and S = allowed ? S : -inf
// (partial tiles only: one branch, not one per element)
//#inline
fn mask_scores() {
  if (masked) {
    for (var i = 0u; i < RPT; i++) {
      for (var w = 0u; w < NWB; w++) { okb[i][w] = tile_bits(mask_id, mask0, rg * RPT + i, sub * BN + w * 32u, ncols, w); }
      for (var j = 0u; j < CPT; j++) { s[i][j] = select(ninf, s[i][j], allowed(okb[i], cg * CPT + j)); }
    }
  }
}

// m_new = max(m_i, rowmax S), α = 2^(m_i - m_new), P = 2^(S - m_new), l_i = l_i·α + rowsum P
// (this thread's columns). With Q_GLOBAL, S is unscaled: the scale is positive, so the row
// max is taken first and the scale applied in the exponent.
//#inline
fn softmax_update() {
  for (var i = 0u; i < RPT; i++) {
    var mx = s[i][0];
    for (var j = 1u; j < CPT; j++) { mx = max(mx, s[i][j]); }
//#if Q_GLOBAL && !MODS
    mx *= prm.scale;
//#endif
    let m_new = row_max(max(m_i[i], mx), rg, cg, i);
    // rows with no allowed key yet subtract 0 instead of -inf (no -inf - -inf NaN)
    let safe = select(m_new, 0.0, m_new == ninf);
    alpha[i] = exp2(m_i[i] - safe);
    m_i[i] = m_new;
    var sum = 0.0;
    for (var j = 0u; j < CPT; j++) {
//#if Q_GLOBAL && !MODS
      s[i][j] = exp2(fma(s[i][j], prm.scale, -safe));
//#else
      s[i][j] = exp2(s[i][j] - safe);
//#endif
      sum += s[i][j];
    }
    l_i[i] = l_i[i] * alpha[i] + sum;
  }
}

// P into workgroup memory (over K), and O·α for rows whose max moved (else α == 1)
//#inline
fn store_p() {
  for (var i = 0u; i < RPT; i++) {
//#if P_VEC4
    // the lane's columns as vec4s: chunks cg·CPT/4 + j4 of its rows
    for (var j4 = 0u; j4 < CPT / 4u; j4++) {
      sm[(rg * RPT + i) * (BN / 4u) + (cg * (CPT / 4u) + j4 + rg) % (BN / 4u)] =
        vec4<f32>(s[i][j4 * 4u], s[i][j4 * 4u + 1u], s[i][j4 * 4u + 2u], s[i][j4 * 4u + 3u]);
    }
//#else
    for (var j = 0u; j < CPT; j++) {
      let c = cg * CPT + j;
      sm[(rg * RPT + i) * (BN / 4u) + (c / 4u + rg) % (BN / 4u)][c % 4u] = s[i][j];
    }
//#endif
    if (alpha[i] != 1.0) {
      for (var j = 0u; j < DPT / 4u; j++) { acc[i][j] *= alpha[i]; }
    }
  }
}

// O += P·V. A masked key's P is exactly 0; when V has an Inf or NaN anywhere, each product of
// a partial tile is selected by the mask, so that a masked key's V never reaches the output
// (as in the dense reference); else partial tiles run unmasked. The unmasked loop walks chunk
// pairs like the S loop (P of the next chunk loads before this chunk's FMAs).
//#inline
fn accumulate_pv() {
  if (masked && v_nonfinite) {
    for (var c4 = 0u; c4 < BN / 4u; c4++) {
      var pv: array<vec4<f32>, RPT>;
      for (var i = 0u; i < RPT; i++) { pv[i] = sm[(rg * RPT + i) * (BN / 4u) + (c4 + rg) % (BN / 4u)]; }
      for (var cc = 0u; cc < 4u; cc++) {
        let c = c4 * 4u + cc;
        for (var j = 0u; j < DPT / 4u; j++) {
          let vv = sm[VOFF + c * (DP / 4u) + j * TPR + cg];
          for (var i = 0u; i < RPT; i++) {
            let ok = allowed(okb[i], c);
            acc[i][j] += select(vec4<f32>(0.0), pv[i][cc] * vv, ok);
          }
        }
      }
    }
  } else {
    var pa: array<vec4<f32>, RPT>;
    for (var i = 0u; i < RPT; i++) { pa[i] = sm[(rg * RPT + i) * (BN / 4u) + rg % (BN / 4u)]; }
    for (var c2 = 0u; c2 < BN / 8u; c2++) {
      let c4 = c2 * 2u;
      var pb: array<vec4<f32>, RPT>;
      for (var i = 0u; i < RPT; i++) { pb[i] = sm[(rg * RPT + i) * (BN / 4u) + (c4 + 1u + rg) % (BN / 4u)]; }
      for (var cc = 0u; cc < 4u; cc++) {
        for (var j = 0u; j < DPT / 4u; j++) {
          let vv = sm[VOFF + (c4 * 4u + cc) * (DP / 4u) + j * TPR + cg];
          for (var i = 0u; i < RPT; i++) { acc[i][j] += pa[i][cc] * vv; }
        }
      }
      for (var i = 0u; i < RPT; i++) { pa[i] = sm[(rg * RPT + i) * (BN / 4u) + (c4 + 2u + rg) % (BN / 4u)]; }
      for (var cc = 0u; cc < 4u; cc++) {
        for (var j = 0u; j < DPT / 4u; j++) {
          let vv = sm[VOFF + ((c4 + 1u) * 4u + cc) * (DP / 4u) + j * TPR + cg];
          for (var i = 0u; i < RPT; i++) { acc[i][j] += pb[i][cc] * vv; }
        }
      }
    }
  }
}

// O = O / l_i into o; a row with no allowed key (l_i = 0) stays 0
//#inline
fn store_o() {
  for (var i = 0u; i < RPT; i++) {
    let l = row_sum(l_i[i], rg, cg, i);
//#if MODS
    // a row with no allowed key (l = 0) stays 0 whatever its sink
    let lt = l + select(0.0, exp2(sink - m_i[i]), l != 0.0);
    let inv = select(0.0, 1.0 / lt, lt != 0.0);
//#else
    let inv = select(0.0, 1.0 / l, l != 0.0);
//#endif
    let r = row0 + rg * RPT + i;
//#if MODS
    if (lse_on && cg == 0u && r < nq) {
      lse_o[lse0 + qtok0 + r * prm.step] = select(ninf, (m_i[i] + log2(l)) * 0.6931471805599453, l != 0.0);
    }
//#endif
    if (r < nq) {
      let dst = base + r * stride;
//#if VEC4
      for (var j = 0u; j < DPT / 4u; j++) {
//#if F16
        if ((j * TPR + cg) * 4u < hd) { st4(dst / 4u + j * TPR + cg, acc[i][j] * inv); }
//#else
        if ((j * TPR + cg) * 4u < hd) { o[dst / 4u + j * TPR + cg] = acc[i][j] * inv; }
//#endif
      }
//#else
      for (var j = 0u; j < DPT; j++) {
        let d = ((j / 4u) * TPR + cg) * 4u + j % 4u;
//#if F16
        if (d < hd) { st1(dst + d, acc[i][j / 4u][j % 4u] * inv); }
//#else
        if (d < hd) { o[dst + d] = acc[i][j / 4u][j % 4u] * inv; }
//#endif
      }
//#endif
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  // ---- Prologue: this workgroup's sequence, query rows and keys
  let tile = wid.x + wid.y * prm.grid_x;
  let seq = tile / prm.tiles_per_seq;
  if (seq >= prm.n_seq) { return; }
  // seq = ((b · heads) + h) · groups + g; the sequence's rows are tokens g, g+step, …
  let g = seq % prm.groups;
  let h = (seq / prm.groups) % prm.heads;
  let b = seq / (prm.groups * prm.heads);
//#if XATTN
  // n_ctx counts keys here. A regrouped group g holds positions g, g + L, …; its queries are
  // its last rows, from group row a = ceil((off - g) / L) (query token g + a·L - off), and
  // the layout of that a (plan.ts groupRows). Without regrouping: every query row, layout 0.
  var nq = prm.n_q;
  var qt0 = 0u;
  var shift = 0u;
//#if MODS
  var qd0 = prm.q_dist; // sequence row of query row 0 among the key rows
//#endif
  if (prm.step > 1u) {
    let off = prm.q_off;
    let a = select(0u, (off - g + prm.step - 1u) / prm.step, g < off);
    let rows = (prm.n_ctx - g + prm.step - 1u) / prm.step;
    nq = select(0u, rows - a, rows > a);
    qt0 = g + a * prm.step - off;
    shift = a - off / prm.step;
//#if MODS
    qd0 = a;
//#endif
  }
//#else
  let nq = (prm.n_ctx - g + prm.step - 1u) / prm.step;
//#endif
  let qt = tile % prm.tiles_per_seq;
  // a sequence's query tiles run last to first: causal rows with the most keys start first
  // and the short ones fill the tail of the grid
  let row0 = (prm.tiles_per_seq - 1u - qt) * BM;
  if (row0 >= nq) { return; }
  let len = meta_w[prm.key_lengths + b];
  let nk = select(0u, (len - g + prm.step - 1u) / prm.step, len > g);
//#if XATTN
  let info = prm.layout_info + (meta_w[h] + shift) * 4u;
//#else
  let info = prm.layout_info + meta_w[h] * 4u;
//#endif
  let qb = row0 / BS;
  let qr0 = row0 % BS; // first row of this tile inside its query block
  let stride = prm.step * prm.n_embd;
//#if XATTN
  let base = (b * prm.n_q + qt0) * prm.n_embd + h * prm.head_dim;
  let kvh = h * prm.kv_heads / prm.heads;
  let kbase = (b + prm.kv_b0) * prm.kb_b + kvh * prm.kb_h + g * prm.kb_g;
  let kstride = prm.k_stride;
//#else
  let base = (b * prm.n_ctx + g) * prm.n_embd + h * prm.head_dim;
//#endif
  let hd = prm.head_dim;
  let ninf = prm.neg_inf;

  let rg = t / TPR;
  let cg = t % TPR;
  let v_nonfinite = vflag[0] != 0u;
//#if MODS
//#if XATTN
  let qtok0 = qt0;
//#else
  let qd0 = 0u;
  let qtok0 = g;
//#endif
  let cap = prm.softcap;
  let slope = select(0.0, mods_v[prm.h0 + h], (prm.mod_flags & 1u) != 0u) * f32(prm.step);
  let sink = select(ninf, mods_v[prm.all_heads + prm.h0 + h], (prm.mod_flags & 2u) != 0u);
  let lse_on = (prm.mod_flags & 4u) != 0u;
  let lse0 = (b * prm.heads + h) * prm.lse_rows;
//#endif

//#if Q_GLOBAL && !Q_TILE
  // vec4 index of this thread's Q rows (rows past nq read row nq - 1: their scores stay in
  // their own rows, which are never stored); chunks past head_dim are not read (PADDED:
  // the S loop stops at hd / 4)
  var qrow: array<u32, RPT>;
  for (var i = 0u; i < RPT; i++) { qrow[i] = (base + min(row0 + rg * RPT + i, nq - 1u) * stride) / 4u; }
//#endif
//#if !Q_GLOBAL
  stage_q(); // q_s = Q · scale
//#endif

  var m_i: array<f32, RPT>;
  var l_i: array<f32, RPT>;
  var acc: array<array<vec4<f32>, DPT / 4u>, RPT>;
  for (var i = 0u; i < RPT; i++) {
    m_i[i] = ninf;
    l_i[i] = 0.0;
    for (var j = 0u; j < DPT / 4u; j++) { acc[i][j] = vec4<f32>(0.0); }
  }

  let e1 = meta_w[meta_w[info] + qb + 1u];
//#if VEC4
  let cols0 = meta_w[info + 1u];
  var k_pre: array<vec4<f32>, NVL>;
  var v_pre: array<vec4<f32>, NVL>;
  {
    let nkey0 = tile_key0(cols0, meta_w[meta_w[info] + qb], e1, 0u);
    load_kv(nkey0);
  }
//#endif

  // ---- Loop over the key tiles of this query block
  for (var e = meta_w[meta_w[info] + qb]; e < e1; e++) {
    let kb = meta_w[meta_w[info + 1u] + e];
    if (kb * BS >= nk) { break; } // cols ascend: every later block is past the keys
    let mask_id = bitcast<i32>(meta_w[meta_w[info + 2u] + e]);
    let mask0 = meta_w[info + 3u] + u32(max(mask_id, 0)) * BS * MW + qr0 * MW;
    for (var sub = 0u; sub < BS / BN; sub++) {
      let key0 = kb * BS + sub * BN;
      if (key0 >= nk) { break; }
      let ncols = min(BN, nk - key0);
      let masked = mask_id >= 0 || ncols < BN;

      workgroupBarrier(); // the previous tile's P·V is done with P and V
      store_kv(); // K (without VEC4 also V; with Q_TILE also Q) into workgroup memory
      workgroupBarrier();

      var s: array<array<f32, CPT>, RPT>;
      scores(); // S = Q·Kᵀ
//#if MODS
      modify_scores(); // S = final logits: scale, softcap, ALiBi
//#endif
      var okb: array<array<u32, NWB>, RPT>;
      mask_scores(); // S = -inf where not allowed (partial tiles only)
      var alpha: array<f32, RPT>;
      softmax_update(); // m_i, α = 2^(m_old - m_i), P = 2^(S - m_i), l_i = l_i·α + rowsum P
//#if Q_TILE
      workgroupBarrier(); // every lane is done reading K and Q: V may overwrite Q
//#endif
//#if VEC4
      store_v(); // V from registers into workgroup memory
      {
        // the next tile: (e, sub + 1) inside this block, else the next CSR entry's first
        let nlast = sub + 1u >= BS / BN;
        let nkey0 = tile_key0(cols0, select(e, e + 1u, nlast), e1, select(sub + 1u, 0u, nlast));
        load_kv(nkey0);
      }
//#endif
//#if !Q_TILE
      workgroupBarrier(); // every lane is done reading K
//#endif
      store_p(); // P into workgroup memory, O = O·α
      workgroupBarrier();
      accumulate_pv(); // O += P·V
    }
  }

  // ---- Epilogue
  store_o(); // O / l_i
}
