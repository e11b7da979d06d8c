// Flash-decoding: attention of a few queries (a decode step, a short chunk) against many
// cached keys, f32. The work of one (batch item, K/V head, query chunk) is its key range
// split across `splits` workgroups; each reads its keys once for every query head of the K/V
// group (GQA: the G = heads / kvHeads query heads of one K/V head share the loads) and writes
// a partial (m, l, O) per row to scratch, and shaders/bsattn_combine.wgsl merges the
// partials (a second dispatch in the same pass). With one split the workgroup writes the
// output itself.
// Rows of a workgroup: up to RM (query head of the group, query) pairs, row ri = hg + G·qi.
// Lanes: TPK lanes per key (8, or 16 from head dim 128: fewer registers per lane), each
// holding DV = DP / (4·TPK) vec4s of a head (lane + TPK·c: the lanes of a key read 16·TPK
// contiguous bytes per load); KG = WG / TPK key groups, each walking
// the keys kg, kg + KG, … of the split U at a time with its own online softmax (m, l, O),
// merged across key groups at the end through workgroup memory.
// Masks are rules on positions, not block layouts: query i at position q_off + i, key row j
// of region g at position g + j·step; allowed when lo <= kpos - qpos <= hi and kpos < n_keys
// ('all', 'local'; 'strided' reads region g = qpos mod L of a regrouped cache, where every key
// has the query's residue). The key range visited is the rows that can be allowed for the
// chunk's queries, so a 'local' step costs L keys, whatever the cache length.
// see: Dao et al., "Flash-Decoding for long-context inference" (2023); FlashInfer's
// decode kernels (one CTA per KV head serves its query-head group).
const DP: u32 = 128u; // head dim padded to a multiple of 32
const RM: u32 = 4u;   // rows per workgroup (register tiles: RM · DV vec4s of O per lane)
const TPK: u32 = 16u; // lanes per key (8 or 16)
//#param SUBGROUPS  score reductions over the TPK lanes of a key by subgroup shuffles
//#param MODS       score modifiers (softcap, ALiBi, sinks) and the lse output, set by uniforms
//#param F16        q, k, v and o hold IEEE halves (as in bsattn_fwd.wgsl; partials and compute stay f32)
//#param F16_NATIVE (F16, shader-f16) vec4<f16> storage arrays; else vec4s of halves as two u32 words

const WG: u32 = 128u;
const KG: u32 = WG / TPK;
const DV: u32 = DP / (4u * TPK);
const U: u32 = 2u; // keys per key group per step (their loads issued together)

struct Params {
  heads: u32, kv_heads: u32, n_q: u32, head_dim: u32,
  q_embd: u32, q_off: i32, step: u32, n_keys: u32,
  kb_b: u32, kb_h: u32, kb_g: u32, k_stride: u32,
  lo: i32, hi: i32, splits: u32, split_keys: u32,
  _pad0: u32, row_blocks: u32, qc: u32, q_chunks: u32,
  scale: f32, neg_inf: f32, grid_x: u32, n_wg: u32,
//#if MODS
  // as in bsattn_fwd.wgsl, base-2 units: softcap·log2 e (0: off); mod_flags: 1 ALiBi, 2 sinks,
  // 4 lse; mods_v: slopes [heads] then sinks [heads]; lse_o: [batch][heads][n_q] (one split)
  softcap: f32, mod_flags: u32, _p1: u32, _p2: u32,
//#endif
}

@group(0) @binding(0) var<uniform> prm: Params;
//#if F16 && F16_NATIVE
@group(0) @binding(1) var<storage, read> q: array<vec4<f16>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f16>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f16>>;
@group(0) @binding(4) var<storage, read_write> o: array<vec4<f16>>;
fn q4(i: u32) -> vec4<f32> { return vec4<f32>(q[i]); }
fn k4(i: u32) -> vec4<f32> { return vec4<f32>(k[i]); }
fn v4(i: u32) -> vec4<f32> { return vec4<f32>(v[i]); }
fn st4(i: u32, x: vec4<f32>) { o[i] = vec4<f16>(x); }
//#endif
//#if F16 && !F16_NATIVE
@group(0) @binding(1) var<storage, read> q: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read> k: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> v: array<vec2<u32>>;
@group(0) @binding(4) var<storage, read_write> o: array<vec2<u32>>;
fn h4(w: vec2<u32>) -> vec4<f32> { return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y)); }
fn q4(i: u32) -> vec4<f32> { return h4(q[i]); }
fn k4(i: u32) -> vec4<f32> { return h4(k[i]); }
fn v4(i: u32) -> vec4<f32> { return h4(v[i]); }
fn st4(i: u32, x: vec4<f32>) { o[i] = vec2<u32>(pack2x16float(x.xy), pack2x16float(x.zw)); }
//#endif
//#if !F16
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> o: array<vec4<f32>>;
//#endif
// partials: per (output row, split) [m, l, 0, 0] then DP/4 vec4s of unnormalised O
@group(0) @binding(5) var<storage, read_write> part: array<vec4<f32>>;
//#if MODS
@group(0) @binding(6) var<storage, read> mods_v: array<f32>;
@group(0) @binding(7) var<storage, read_write> lse_o: array<f32>;
//#endif

var<workgroup> red_o: array<vec4<f32>, KG * DP / 4u>;
var<workgroup> red_m: array<f32, KG * RM>;
var<workgroup> red_l: array<f32, KG * RM>;
//#if !SUBGROUPS
var<workgroup> red_s: array<f32, WG * U * RM>;
//#endif

// Sum over the TPK lanes of a key group (lanes t & ~(TPK - 1) …)
fn lane_sum(x: array<array<f32, U>, RM>, t: u32) -> array<array<f32, U>, RM> {
  var r = x;
//#if SUBGROUPS
  for (var i = 0u; i < RM; i++) {
    for (var u = 0u; u < U; u++) {
      var s = r[i][u] + subgroupShuffleXor(r[i][u], 1u);
      s += subgroupShuffleXor(s, 2u);
      s += subgroupShuffleXor(s, 4u);
      if (TPK > 8u) { s += subgroupShuffleXor(s, 8u); }
      r[i][u] = s;
    }
  }
//#else
  for (var i = 0u; i < RM; i++) { for (var u = 0u; u < U; u++) { red_s[(t * RM + i) * U + u] = r[i][u]; } }
  workgroupBarrier();
  let t0 = t & ~(TPK - 1u);
  for (var i = 0u; i < RM; i++) {
    for (var u = 0u; u < U; u++) {
      var s = 0.0;
      for (var j = 0u; j < TPK; j++) { s += red_s[((t0 + j) * RM + i) * U + u]; }
      r[i][u] = s;
    }
  }
  workgroupBarrier();
//#endif
  return r;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let w = wid.x + wid.y * prm.grid_x;
  if (w >= prm.n_wg) { return; }
  // w = (((b · kv_heads + kvh) · q_chunks + qch) · row_blocks + rb) · splits + split
  let split = w % prm.splits;
  var rest = w / prm.splits;
  let rb = rest % prm.row_blocks;
  rest /= prm.row_blocks;
  let qch = rest % prm.q_chunks;
  rest /= prm.q_chunks;
  let kvh = rest % prm.kv_heads;
  let b = rest / prm.kv_heads;
  let grp = prm.heads / prm.kv_heads;
  let lane = t % TPK;
  let kg = t / TPK;
  let hd = prm.head_dim;

  // this chunk's queries: qi0 … qi0 + nqc - 1, positions qpos0 …
  let qi0 = qch * prm.qc;
  let nqc = min(prm.qc, prm.n_q - qi0);
  let qpos0 = prm.q_off + i32(qi0);
  let qpos1 = qpos0 + i32(nqc) - 1;
  // 'strided': the region of the chunk's residue (one query per chunk); else region 0
  let g = select(0u, u32(qpos0) % prm.step, prm.step > 1u);
  let nk = select(0u, (prm.n_keys - g + prm.step - 1u) / prm.step, prm.n_keys > g);
  // key rows that may be allowed: kpos in [qpos0 + lo, qpos1 + hi], kpos = g + j·step
  let klo = qpos0 + prm.lo - i32(g);
  let khi = qpos1 + prm.hi - i32(g);
  let st = i32(prm.step);
  var j0 = 0u;
  if (klo > 0) { j0 = u32((klo + st - 1) / st); }
  var j1 = 0u; // exclusive
  if (khi >= 0) { j1 = min(nk, u32(khi / st) + 1u); }
  let s0 = j0 + split * prm.split_keys;
  let s1 = min(j1, s0 + prm.split_keys);

  // rows: ri = rb·RM + r → query head kvh·grp + ri % grp, query qi0 + ri / grp
  let nrows = grp * nqc;
  var qv: array<array<vec4<f32>, DV>, RM>;
  var qpos: array<i32, RM>;
  var live: array<bool, RM>;
//#if MODS
  let cap = prm.softcap;
  var slope: array<f32, RM>;
//#endif
  for (var r = 0u; r < RM; r++) {
    let ri = rb * RM + r;
    live[r] = ri < nrows;
    let h = kvh * grp + ri % grp;
    let qi = qi0 + ri / grp;
    qpos[r] = prm.q_off + i32(qi);
//#if MODS
    slope[r] = select(0.0, mods_v[min(h, prm.heads - 1u)], (prm.mod_flags & 1u) != 0u);
//#endif
    for (var c = 0u; c < DV; c++) {
      let d4 = lane + c * TPK;
      qv[r][c] = vec4<f32>(0.0);
//#if F16
      if (live[r] && d4 * 4u < hd) { qv[r][c] = q4(((b * prm.n_q + qi) * prm.q_embd + h * hd) / 4u + d4) * prm.scale; }
//#else
      if (live[r] && d4 * 4u < hd) { qv[r][c] = q[((b * prm.n_q + qi) * prm.q_embd + h * hd) / 4u + d4] * prm.scale; }
//#endif
    }
  }

  let ninf = prm.neg_inf;
  var m: array<f32, RM>;
  var l: array<f32, RM>;
  var acc: array<array<vec4<f32>, DV>, RM>;
  for (var r = 0u; r < RM; r++) {
    m[r] = ninf;
    l[r] = 0.0;
    for (var c = 0u; c < DV; c++) { acc[r][c] = vec4<f32>(0.0); }
  }

  let kb = b * prm.kb_b + kvh * prm.kb_h + g * prm.kb_g;
  // every key group runs the same number of steps (the lane sums may use barriers)
  let steps = (select(0u, s1 - s0, s1 > s0) + KG * U - 1u) / (KG * U);
  for (var it = 0u; it < steps; it++) {
    var kk: array<array<vec4<f32>, DV>, U>;
    var vv: array<array<vec4<f32>, DV>, U>;
    var jj: array<u32, U>;
    for (var u = 0u; u < U; u++) {
      let j = s0 + (it * KG + kg) * U + u;
      jj[u] = j;
      for (var c = 0u; c < DV; c++) {
        let d4 = lane + c * TPK;
        kk[u][c] = vec4<f32>(0.0);
        vv[u][c] = vec4<f32>(0.0);
        if (j < s1 && d4 * 4u < hd) {
          let at = (kb + j * prm.k_stride) / 4u + d4;
//#if F16
          kk[u][c] = k4(at);
//#else
          kk[u][c] = k[at];
//#endif
//#if F16
          vv[u][c] = v4(at);
//#else
          vv[u][c] = v[at];
//#endif
        }
      }
    }
    var sc: array<array<f32, U>, RM>;
    for (var r = 0u; r < RM; r++) {
      for (var u = 0u; u < U; u++) {
        var s = 0.0;
        for (var c = 0u; c < DV; c++) { s += dot(qv[r][c], kk[u][c]); }
        sc[r][u] = s;
      }
    }
    sc = lane_sum(sc, t);
    for (var r = 0u; r < RM; r++) {
      var ok: array<bool, U>;
      var mx = m[r];
      for (var u = 0u; u < U; u++) {
        let kpos = i32(g + jj[u] * prm.step);
        let dd = kpos - qpos[r];
        ok[u] = live[r] && jj[u] < s1 && dd >= prm.lo && dd <= prm.hi;
//#if MODS
        var x = sc[r][u];
        if (cap > 0.0) { x = cap * tanh(clamp(x / cap, -15.0, 15.0)); }
        sc[r][u] = x - slope[r] * f32(abs(dd));
//#endif
        sc[r][u] = select(ninf, sc[r][u], ok[u]);
        mx = max(mx, sc[r][u]);
      }
      let safe = select(mx, 0.0, mx == ninf);
      let alpha = exp2(m[r] - safe);
      m[r] = mx;
      var sum = 0.0;
      for (var c = 0u; c < DV; c++) { acc[r][c] *= alpha; }
      for (var u = 0u; u < U; u++) {
        let p = exp2(sc[r][u] - safe);
        sum += p;
        // a masked key's V never reaches O (0 · Inf would be NaN)
        for (var c = 0u; c < DV; c++) { acc[r][c] += select(vec4<f32>(0.0), p * vv[u][c], ok[u]); }
      }
      l[r] = l[r] * alpha + sum;
    }
  }

  // merge the key groups: M = max m, then Σ 2^(m - M)·(l, O)
  for (var r = 0u; r < RM; r++) {
    if (lane == 0u) { red_m[kg * RM + r] = m[r]; }
  }
  workgroupBarrier();
  for (var r = 0u; r < RM; r++) {
    var mm = ninf;
    for (var j = 0u; j < KG; j++) { mm = max(mm, red_m[j * RM + r]); }
    let f = select(exp2(m[r] - mm), 0.0, m[r] == ninf);
    if (lane == 0u) { red_l[kg * RM + r] = l[r] * f; }
    for (var c = 0u; c < DV; c++) { red_o[kg * (DP / 4u) + lane + c * TPK] = acc[r][c] * f; }
    workgroupBarrier();
    let ri = rb * RM + r;
    if (live[r] && t < DP / 4u && t * 4u < hd) {
      var os = vec4<f32>(0.0);
      var ls = 0.0;
      for (var j = 0u; j < KG; j++) {
        os += red_o[j * (DP / 4u) + t];
        ls += red_l[j * RM + r];
      }
      let h = kvh * grp + ri % grp;
      let qi = qi0 + ri / grp;
      let row = (b * prm.n_q + qi) * prm.heads + h;
      if (prm.splits == 1u) {
//#if MODS
        // the sink joins the denominator only; lse = (m + log2 l)·ln 2 over the keys
        let sink = select(ninf, mods_v[prm.heads + h], (prm.mod_flags & 2u) != 0u);
        let lt = ls + select(0.0, exp2(sink - mm), ls != 0.0);
//#if F16
        st4(((b * prm.n_q + qi) * prm.q_embd + h * hd) / 4u + t, select(vec4<f32>(0.0), os / lt, lt != 0.0));
//#else
        o[((b * prm.n_q + qi) * prm.q_embd + h * hd) / 4u + t] = select(vec4<f32>(0.0), os / lt, lt != 0.0);
//#endif
        if (t == 0u && (prm.mod_flags & 4u) != 0u) {
          lse_o[(b * prm.heads + h) * prm.n_q + qi] = select(ninf, (mm + log2(ls)) * 0.6931471805599453, ls != 0.0);
        }
//#else
//#if F16
        st4(((b * prm.n_q + qi) * prm.q_embd + h * hd) / 4u + t, select(vec4<f32>(0.0), os / ls, ls != 0.0));
//#else
        o[((b * prm.n_q + qi) * prm.q_embd + h * hd) / 4u + t] = select(vec4<f32>(0.0), os / ls, ls != 0.0);
//#endif
//#endif
      } else {
        let at = (row * prm.splits + split) * (DP / 4u + 1u);
        if (t == 0u) { part[at] = vec4<f32>(mm, ls, 0.0, 0.0); }
        part[at + 1u + t] = os;
      }
    }
    workgroupBarrier();
  }
}
