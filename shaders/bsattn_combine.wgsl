// Second pass of flash-decoding (shaders/bsattn_decode.wgsl): merges the partials of one
// output row (batch item, query, head) over the splits of its keys: M = max m_s,
// O = Σ 2^(m_s - M)·O_s / Σ 2^(m_s - M)·l_s (0 when no split saw an allowed key).
// One workgroup per row, a lane per vec4 of the head.

struct Params {
  rows: u32, splits: u32, dp4: u32, hd4: u32,
  grid_x: u32, neg_inf: f32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> prm: Params;
// per (row, split): [m, l, 0, 0] then dp4 vec4s of unnormalised O
@group(0) @binding(1) var<storage, read> part: array<vec4<f32>>;
// o: [rows][hd4] vec4s (rows of [batch, nQ, heads·headDim] in order)
@group(0) @binding(2) var<storage, read_write> o: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = wid.x + wid.y * prm.grid_x;
  if (row >= prm.rows || t >= prm.hd4) { return; }
  let stride = prm.dp4 + 1u;
  let at0 = row * prm.splits * stride;
  var mm = prm.neg_inf;
  for (var s = 0u; s < prm.splits; s++) { mm = max(mm, part[at0 + s * stride].x); }
  var os = vec4<f32>(0.0);
  var ls = 0.0;
  if (mm != prm.neg_inf) {
    for (var s = 0u; s < prm.splits; s++) {
      let ml = part[at0 + s * stride];
      let f = select(exp2(ml.x - mm), 0.0, ml.x == prm.neg_inf);
      ls += ml.y * f;
      os += part[at0 + s * stride + 1u + t] * f;
    }
  }
  o[row * prm.hd4 + t] = select(vec4<f32>(0.0), os / ls, ls != 0.0);
}
