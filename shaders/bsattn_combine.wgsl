// Second pass of flash-decoding (shaders/bsattn_decode.wgsl): merges the partials of one
// output row (batch item, query, head) over the splits of its keys: M = max m_s,
// O = Σ 2^(m_s - M)·O_s / Σ 2^(m_s - M)·l_s (0 when no split saw an allowed key).
// One workgroup per row. The splits are read in parallel, not one after another (a loop of
// dependent-latency loads over 100+ splits would cost tens of µs): the max over all 256
// lanes, then LANES lanes per vec4 column of the head × GROUPS groups each summing every
// GROUPS-th split, reduced through workgroup memory.

//#param MODS       sinks and the lse output (shaders/bsattn_decode.wgsl's MODS), set by uniforms
//#param F16        o holds IEEE halves: vec4s of halves as two u32 words (both of the decode kernel's forms)
const WG: u32 = 256u;
const LANES: u32 = 64u;        // vec4s of a head (head dim <= 256)
const GROUPS: u32 = WG / LANES;

struct Params {
  rows: u32, splits: u32, dp4: u32, hd4: u32,
  grid_x: u32, neg_inf: f32, _pad0: u32, _pad1: u32,
//#if MODS
  // row = (b·n_q + qi)·heads + h; mod_flags: 2 sinks (mods_v[heads + h], base 2), 4 lse
  heads: u32, n_q: u32, mod_flags: u32, _pad2: u32,
//#endif
}

@group(0) @binding(0) var<uniform> prm: Params;
// per (row, split): [m, l, 0, 0] then dp4 vec4s of unnormalised O
@group(0) @binding(1) var<storage, read> part: array<vec4<f32>>;
// o: [rows][hd4] vec4s (rows of [batch, nQ, heads·headDim] in order)
//#if F16
@group(0) @binding(2) var<storage, read_write> o: array<vec2<u32>>;
fn st4(i: u32, x: vec4<f32>) { o[i] = vec2<u32>(pack2x16float(x.xy), pack2x16float(x.zw)); }
//#else
@group(0) @binding(2) var<storage, read_write> o: array<vec4<f32>>;
//#endif
//#if MODS
@group(0) @binding(3) var<storage, read> mods_v: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse_o: array<f32>;
//#endif

var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_l: array<f32, WG>;
var<workgroup> red_o: array<vec4<f32>, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = wid.x + wid.y * prm.grid_x;
  if (row >= prm.rows) { return; }
  let stride = prm.dp4 + 1u;
  let at0 = row * prm.splits * stride;
  let ninf = prm.neg_inf;
  var mm = ninf;
  for (var s = t; s < prm.splits; s += WG) { mm = max(mm, part[at0 + s * stride].x); }
  red_m[t] = mm;
  workgroupBarrier();
  for (var w = WG / 2u; w > 0u; w >>= 1u) {
    if (t < w) { red_m[t] = max(red_m[t], red_m[t + w]); }
    workgroupBarrier();
  }
  mm = red_m[0];
  let c = t % LANES;
  let j = t / LANES;
  var os = vec4<f32>(0.0);
  var ls = 0.0;
  if (mm != ninf) {
    for (var s = j; s < prm.splits; s += GROUPS) {
      let ml = part[at0 + s * stride];
      let f = select(exp2(ml.x - mm), 0.0, ml.x == ninf);
      ls += ml.y * f;
      if (c < prm.hd4) { os += part[at0 + s * stride + 1u + c] * f; }
    }
  }
  red_o[t] = os;
  red_l[t] = ls;
  workgroupBarrier();
  if (t < prm.hd4) {
    var so = vec4<f32>(0.0);
    var sl = 0.0;
    for (var g = 0u; g < GROUPS; g++) {
      so += red_o[g * LANES + t];
      sl += red_l[g * LANES];
    }
//#if MODS
    let h = row % prm.heads;
    let sink = select(ninf, mods_v[prm.heads + h], (prm.mod_flags & 2u) != 0u);
    let lt = sl + select(0.0, exp2(sink - mm), sl != 0.0);
//#if F16
    st4(row * prm.hd4 + t, select(vec4<f32>(0.0), so / lt, lt != 0.0));
//#else
    o[row * prm.hd4 + t] = select(vec4<f32>(0.0), so / lt, lt != 0.0);
//#endif
    if (t == 0u && (prm.mod_flags & 4u) != 0u) {
      let qi = (row / prm.heads) % prm.n_q;
      let b = row / (prm.heads * prm.n_q);
      lse_o[(b * prm.heads + h) * prm.n_q + qi] = select(ninf, (mm + log2(sl)) * 0.6931471805599453, sl != 0.0);
    }
//#else
//#if F16
    st4(row * prm.hd4 + t, select(vec4<f32>(0.0), so / sl, sl != 0.0));
//#else
    o[row * prm.hd4 + t] = select(vec4<f32>(0.0), so / sl, sl != 0.0);
//#endif
//#endif
  }
}
