# Kernel variants of shader v8 (bench/NOTES-gpu.md, "v9 trials"), built in /tmp/v9w (a worktree
# of HEAD with the kernel files of the commit each variant was written against) into
# /work/main/dists/<name>.
#   python3 variants-v9.py <name>
# Timing-only diagnostics (wrong results on purpose):
#   pvlds: the unmasked P·V loads each V vec4 once per key and uses it for both of the lane's
#          output chunks (8 -> 4 V loads per 4 keys; same FFMA count)
#   slds:  the S loop loads K for even j only and reuses it for j+1 (8 -> 4 K loads per chunk)
#   noS / noPV / noSPV: the S chunk loop / the unmasked P·V chunk loop / both removed
#   kv0:   every prefetch of the tile loop reads the sequence's first key tile (L2/L1-resident:
#          next to no K/V traffic; same instructions)
#   noPst: the P stores removed (P·V reads whatever is in workgroup memory)
#   noRed: the row max is the lane's own max (no shuffles)
# Real variants:
#   bm32 / bm16: query tiles capped at 32 / 16 rows, and rowsPerThread 2 accepted (with
#          gpu.mjs --rpt 2 --bn 32: smaller workgroup memory, more workgroups per SM)
#   vstart: (prefetch path) V is stored at the tile start with K, not after S, so that the
#          prefetched V registers are dead during S (32 fewer live registers there)
#   vstart-u2: both
#   qg128: 128-row query tiles (256 threads) for blocks of 128 (the band modes run at 128):
#          Q is read from global memory (L1) in the S loop instead of workgroup memory, so
#          that K [64][64], P [128][64] (aliased) and V fit the 48 KiB; scale applied to S
#   qcoal: (on v9, timing only) the S loop's Q loads read coalesced addresses — the 4 row
#          groups of a warp read 4 consecutive vec4s, as a pre-tiled Q would give — instead
#          of 4 rows 4 KiB apart (wrong values; the cost of the loads only)
#   r2:    (on v9) rowsPerThread 2 accepted: with --rpt 2, 128-row tiles run 512 threads
#   b256:  (on v9) 256-row query tiles with 32-key tiles (512 threads; K 8 + P 32 + V 8 KiB),
#          the band modes at block 256
#   u2:    the S and unmasked P·V chunk loops unrolled by 2 (the host unrolls a 2u loop)
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from variant_build import build, worktree
name = variant = sys.argv[1]
# The commit each variant's edits were written against: kernel v8 (14e28b7), or v9 as first
# committed (8b38e9e, before the tile-choice refinement).
ON_V9 = ('qcoal', 'r2', 'b256')
W = worktree('/tmp/v9w', '8b38e9e' if name in ON_V9 else '14e28b7')
s = open(f'{W}/shaders/bsattn_fwd.wgsl').read()
prog = open(f'{W}/src/backends/webgpu/program.ts').read()

def sub(old, new, count=1):
    global s
    assert s.count(old) == count, (old, s.count(old))
    s = s.replace(old, new)

if name == 'pvlds':
    sub("""            for (var j = 0u; j < DPT / 4u; j++) {
              let vv = v_s[(c4 * 4u + cc) * (DP / 4u) + j * TPR + cg];""",
        """            let vv = v_s[(c4 * 4u + cc) * (DP / 4u) + cg];
            for (var j = 0u; j < DPT / 4u; j++) {""")
elif name == 'slds':
    sub("""          let kv = kp_s[(cg * CPT + j) * (DP / 4u) + (c4 + cg) % (DP / 4u)];""",
        """          let kv = kp_s[(cg * CPT + j / 2u * 2u) * (DP / 4u) + (c4 + cg) % (DP / 4u)];""")
if name.startswith('vstart'):
    sub("""        if (i < BN * DP / 4u) { kp_s[kv_idx(i / (DP / 4u), i % (DP / 4u))] = k_pre[u]; }
      }
//#else""", """        if (i < BN * DP / 4u) { kp_s[kv_idx(i / (DP / 4u), i % (DP / 4u))] = k_pre[u]; v_s[i] = v_pre[u]; }
      }
//#else""")
    sub("""//#if OVERLAP_V
      for (var u = 0u; u < NVL; u++) {
        if (t + u * WG < BN * DP / 4u) { v_s[t + u * WG] = v_pre[u]; }
      }""", """//#if OVERLAP_V
//#if !PREFETCH
      for (var u = 0u; u < NVL; u++) {
        if (t + u * WG < BN * DP / 4u) { v_s[t + u * WG] = v_pre[u]; }
      }
//#endif""")
    name = name[len('vstart-'):] if name != 'vstart' else ''
if name in ('', 'pvlds', 'slds'):
    pass  # vstart alone, or edited above
elif name == 'qcoal':
    sub("        for (var i = 0u; i < RPT; i++) { qv[i] = q[qrow[i] + c4]; }",
        "        for (var i = 0u; i < RPT; i++) { qv[i] = q[qt0 + (c4 * RPT + i) * (BM / RPT) + rg]; }")
    sub("  var qrow: array<u32, RPT>;", "  let qt0 = (base / 4u + row0 * stride / 4u) / (BM * DP / 4u) * (BM * DP / 4u);\n  var qrow: array<u32, RPT>;")
elif name == 'r2':
    cfg = open(f'{W}/src/config.ts').read()
    old = "o.rowsPerThread !== 4 && o.rowsPerThread !== 8"
    assert old in cfg
    open(f'{W}/src/config.ts', 'w').write(cfg.replace(old, "o.rowsPerThread !== 4 && o.rowsPerThread !== 8 && o.rowsPerThread !== 2"))
elif name == 'b256':
    for old, new in [("const sizes = [128, 64, 32, 16, 8].filter((x) => x <= bs);", "const sizes = [256, 128, 64, 32, 16, 8].filter((x) => x <= bs);"),
                     ("for (const bm of sizes.filter((x) => x <= (qGlobal ? 128 : 64))) {", "for (const bm of sizes.filter((x) => x <= (qGlobal ? 256 : 64))) {")]:
        assert old in prog, old
        prog = prog.replace(old, new)
    be = open(f'{W}/src/backends/webgpu/webgpu-backend.ts').read()
    old = "const GPU_BAND_BLOCK = 128;"
    assert old in be
    open(f'{W}/src/backends/webgpu/webgpu-backend.ts', 'w').write(be.replace(old, "const GPU_BAND_BLOCK = 256;"))
elif name == 'qg128':
    sub("""  for (var i = t; i < BM * DP / 4u; i += WG) {
    let r = i / (DP / 4u);
    let d4 = i % (DP / 4u);
    var x = vec4<f32>(0.0);
    if (row0 + r < nq && d4 * 4u < hd) { x = q[(base + (row0 + r) * stride) / 4u + d4] * prm.scale; }
    q_s[qk_idx(r, d4)] = x;
  }""", """  var qrow: array<u32, RPT>;
  for (var i = 0u; i < RPT; i++) { qrow[i] = (base + (row0 + rg * RPT + i) * stride) / 4u; }""")
    sub("        for (var i = 0u; i < RPT; i++) { qv[i] = q_s[(rg * RPT + i) * (DP / 4u) + (c4 + rg % 8u) % (DP / 4u)]; }",
        "        for (var i = 0u; i < RPT; i++) { qv[i] = q[qrow[i] + c4]; }")
    sub("""//#endif
        }
      }

      // Allowed bits""", """//#endif
        }
      }
      for (var i = 0u; i < RPT; i++) { for (var j = 0u; j < CPT; j++) { s[i][j] *= prm.scale; } }

      // Allowed bits""")
    sub("var<workgroup> q_s: array<vec4<f32>, BM * DP / 4u>;", "")
    sub("fn qk_idx(row: u32, c4: u32) -> u32 { return row * (DP / 4u) + (c4 + (row / RPT) % 8u) % (DP / 4u); }", "")
    old = "const sizes = [64, 32, 16, 8].filter((x) => x <= bs);"
    assert old in prog
    prog = prog.replace(old, "const sizes = [128, 64, 32, 16, 8].filter((x) => x <= bs);")
    old = "return 4 * (t.bm * t.dp + Math.max(t.bn * t.dp, t.bm * t.bn) + t.bn * t.dp + red);"
    assert old in prog
    prog = prog.replace(old, "return 4 * (Math.max(t.bn * t.dp, t.bm * t.bn) + t.bn * t.dp + red);")
    old = "for (const bn of sizes.filter((x) => x <= (prefs.maxKeyTile ?? 64))) {"
    assert old in prog
    prog = prog.replace(old, "for (const bn of sizes.filter((x) => x <= (prefs.maxKeyTile ?? 64) && x <= 64)) {")
    be = open(f'{W}/src/backends/webgpu/webgpu-backend.ts').read()
    old = "const GPU_BAND_BLOCK = 64;"
    assert old in be
    open(f'{W}/src/backends/webgpu/webgpu-backend.ts', 'w').write(be.replace(old, "const GPU_BAND_BLOCK = 128;"))
elif name == 'u2':
    sub("""      for (var c4 = 0u; c4 < DP / 4u; c4++) {
        var qv""", """      for (var c4b = 0u; c4b < DP / 4u; c4b += 2u) { for (var c4u = 0u; c4u < 2u; c4u++) {
        let c4 = c4b + c4u;
        var qv""")
    sub("""//#endif
        }
      }

      // Allowed bits""", """//#endif
        }
      } }

      // Allowed bits""")
    sub("""        for (var c4 = 0u; c4 < BN / 4u; c4++) {
          var pv: array<vec4<f32>, RPT>;
          for (var i = 0u; i < RPT; i++) { pv[i] = kp_s[(rg * RPT + i) * (BN / 4u) + (c4 + rg) % (BN / 4u)]; }
          for (var cc = 0u; cc < 4u; cc++) {
            for (var j""", """        for (var c4b = 0u; c4b < BN / 4u; c4b += 2u) { for (var c4u = 0u; c4u < 2u; c4u++) {
          let c4 = c4b + c4u;
          var pv: array<vec4<f32>, RPT>;
          for (var i = 0u; i < RPT; i++) { pv[i] = kp_s[(rg * RPT + i) * (BN / 4u) + (c4 + rg) % (BN / 4u)]; }
          for (var cc = 0u; cc < 4u; cc++) {
            for (var j""")
    sub("""              for (var i = 0u; i < RPT; i++) { acc[i][j] += pv[i][cc] * vv; }
            }
          }
        }""", """              for (var i = 0u; i < RPT; i++) { acc[i][j] += pv[i][cc] * vv; }
            }
          }
        } }""")
    old = "'4u': 4,"
    assert old in prog
    prog = prog.replace(old, "'4u': 4, '2u': 2,")
elif name in ('noS', 'noPV', 'noSPV'):
    if name != 'noPV':
        sub("      for (var c4 = 0u; c4 < DP / 4u; c4++) {\n        var qv", "      for (var c4 = 0u; c4 < 0u; c4++) {\n        var qv")
    if name != 'noS':
        sub("""        for (var c4 = 0u; c4 < BN / 4u; c4++) {
          var pv: array<vec4<f32>, RPT>;
          for (var i = 0u; i < RPT; i++) { pv[i] = kp_s[(rg * RPT + i) * (BN / 4u) + (c4 + rg) % (BN / 4u)]; }
          for (var cc = 0u; cc < 4u; cc++) {
            for (var j""", """        for (var c4 = 0u; c4 < 0u; c4++) {
          var pv: array<vec4<f32>, RPT>;
          for (var i = 0u; i < RPT; i++) { pv[i] = kp_s[(rg * RPT + i) * (BN / 4u) + (c4 + rg) % (BN / 4u)]; }
          for (var cc = 0u; cc < 4u; cc++) {
            for (var j""")
elif name == 'kv0':
    sub("        let at = (base + (nkey0 + c) * stride) / 4u + d4;\n            k_pre", "        let at = (base + c * stride) / 4u + d4;\n            k_pre")
elif name == 'noPst':
    sub("          kp_s[(rg * RPT + i) * (BN / 4u) + (c / 4u + rg) % (BN / 4u)][c % 4u] = s[i][j];", "          if (s[i][j] == 12345.0) { kp_s[(rg * RPT + i) * (BN / 4u) + (c / 4u + rg) % (BN / 4u)][c % 4u] = s[i][j]; }")
elif name == 'noRed':
    sub("""  var m = max(x, subgroupShuffleXor(x, 1u));
  m = max(m, subgroupShuffleXor(m, 2u));
  return max(m, subgroupShuffleXor(m, 4u));""", "  return x;")
elif name in ('bm32', 'bm16'):
    cap = name[2:]
    old = "  for (const bm of sizes) {"
    assert old in prog
    prog = prog.replace(old, f"  for (const bm of sizes.filter((x) => x <= {cap})) {{")
    cfg = open(f'{W}/src/config.ts').read()
    old = "o.rowsPerThread !== 4 && o.rowsPerThread !== 8"
    assert old in cfg
    open(f'{W}/src/config.ts', 'w').write(cfg.replace(old, "o.rowsPerThread !== 4 && o.rowsPerThread !== 8 && o.rowsPerThread !== 2"))
else:
    raise SystemExit('unknown variant ' + name)
open(f'{W}/shaders/bsattn_fwd.wgsl', 'w').write(s)
open(f'{W}/src/backends/webgpu/program.ts', 'w').write(prog)
build(W, variant)
print('built', variant)
