//#param HALF  V holds IEEE halves, two a word
// Pre-pass of the forward program: flag[0] |= 1 when any value of the bound V range is
// Inf or NaN (exponent bits all ones). When none is, the main kernel runs masked tiles'
// P·V unmasked: a masked key's P is exactly 0 (2^-inf), and 0 · finite V adds nothing;
// only a non-finite V needs the per-product select that keeps it out of the output.
// Grid-stride loop over the words of the binding; one atomicOr per invocation that saw one.

@group(0) @binding(0) var<storage, read> v: array<u32>;
@group(0) @binding(1) var<storage, read_write> flag: array<atomic<u32>>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let n = arrayLength(&v);
  let stride = nwg.x * WG;
  var bad = 0u;
  for (var i = gid.x; i < n; i += stride) {
//#if HALF
    // two halves a word: either one's exponent bits all ones
    bad |= u32((v[i] & 0x7c00u) == 0x7c00u || (v[i] & 0x7c000000u) == 0x7c000000u);
//#else
    bad |= u32((v[i] & 0x7f800000u) == 0x7f800000u);
//#endif
  }
  if (bad != 0u) { atomicOr(&flag[0], 1u); }
}
