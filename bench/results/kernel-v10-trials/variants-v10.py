# Kernel variants of shader v9 (bench/NOTES-gpu.md, "v10 trials"), built in /tmp/v10w (a
# worktree of HEAD with main's working kernel files) into /work/main/dists/<name>.
#   python3 variants-v10.py <name>
# Timing-only diagnostics (wrong results on purpose):
#   noS / noPV / noSPV: the S chunk loop / the unmasked P·V chunk loop / both removed
# Real variants:
#   qpipe: the S loop loads the next chunk's Q (global memory) while this chunk's FMAs run
#   ppipe: the unmasked P·V loop loads the next chunk's P (workgroup memory) likewise
#   qppipe: both
#   soft:  the mask applied to S in one branch (was a branch per element of the unrolled max
#          loop), and (Q_GLOBAL) the scale folded into the exponent: 2^(fma(S, scale, -m))
#   su2:   the S chunk loop unrolled by 2 (the second chunk's loads can issue early)
#   pvu2:  the unmasked P·V chunk loop unrolled by 2
#   (names joined by '+' apply several; the ones below are written against v9.1, 4a1dcf0)
#   nob12 / nob34 (timing only): the two barriers around the K store / around the P store removed
#   noexp (timing only): P = S - m (no exp2)
#   nomax (timing only): the row max is the lane's own (no shuffles)
#   lazy:  O is rescaled only for rows whose max moved (alpha != 1)
#   pst4:  (BN = 64 only) P stored as two vec4 a row instead of 8 scalars
#   cstride: (timing, this benchmark's shapes only) the row stride a constant (nEmbd 1024,
#          step 1): the cost of the runtime stride in the address arithmetic
#   sping: (Q_GLOBAL, not PADDED) the S loop by chunk pairs with two Q buffers: the next
#          chunk's Q loads while this chunk computes, no array copies (qpipe copied)
#   pping: the unmasked P·V loop likewise with two P buffers
#   pping2: pping with the pair loop counted by c2++ (c4 = 2·c2), so that Tint's range
#          analysis proves the workgroup indices (pping's `c4 += 2u` loop got a clamp on
#          every V load: 16 VIMNMX)
#   sping2: sping with the pair loop counted by c2++
#   qkeep: (on v9.3, 0f…) Q's first chunk loaded once before the tile loop: each tile's pair loop
#          ends by loading chunk 0 again (the wrap), which the next tile then uses
#   kping: (on v9.3) the S pair loop also holds over the first K vec4 of the next chunk (ka / kb)
#   qearly: (on v9.3) the first Q chunk of a tile is loaded before the K store and its barriers
#   rsearly: (on v9.3) O is rescaled before the barrier that precedes the P stores
#   qstage: (on v9.3; 128×64 and 64×64 tiles with DP <= BN only) Q staged into workgroup
#          memory every tile, in the part that K does not use during S (P's upper half and V:
#          one array `sm`), so that the S loop reads Q with LDS at immediate offsets instead of
#          bounds-checked global loads; V is then stored after the barrier that ends S
#   (on v9.4, bf24c2c:)
#   kping4: the S pair loop holds over the first K vec4 of the next chunk (ka / kb)
#   vlate4: the next tile's K/V prefetch issued before the barrier that ends S (the V of this
#          tile kept in v_cur until its store behind that barrier)
#   pvfull4 / sfull4: (v9.4) the P·V / S pair loop unrolled completely by the host (BN/8, DP/8
#          copies): no loop-carried buffers, no moves between iterations
#   pvping: pping2 plus the first key's V rows of each chunk held over too (va / vb)
#   g64x32 / g64x64: (timing on the H100 only) every tile 64 query rows × 32 / 64 keys with Q
#          from global memory: 128 threads, 16 / 32 KiB (3 / 1 workgroups per SM by memory)
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from variant_build import build, worktree
name = sys.argv[1]
parts = name.split('+')
W = worktree('/tmp/v10w', sys.argv[2] if len(sys.argv) > 2 else None)
s = open(f'{W}/shaders/bsattn_fwd.wgsl').read()

def sub(old, new, count=1):
    global s
    assert s.count(old) == count, (old, s.count(old))
    s = s.replace(old, new)

def unroll_bounds(extra):
    """More loop bounds for program.ts's unroll() (a JS object-literal fragment)."""
    global prog
    assert "'4u': 4," in prog
    prog = prog.replace("'4u': 4,", "'4u': 4, " + extra, 1)

def k_held(arr, qn, kn, c4):
    """(kping, kping4) one chunk of the S pair loop with its first K vec4 held in `kn`."""
    return f"""        for (var i = 0u; i < RPT; i++) {{ s[i][0] = mac(s[i][0], {qn}[i], {kn}); }}
        for (var j1 = 0u; j1 < CPT - 1u; j1++) {{
          let kv = {arr}[(cg * CPT + j1 + 1u) * (DP / 4u) + ({c4} + cg) % (DP / 4u)];
          for (var i = 0u; i < RPT; i++) {{ s[i][j1 + 1u] = mac(s[i][j1 + 1u], {qn}[i], kv); }}
        }}"""

S_HEAD = "//#else\n      for (var c4 = 0u; c4 < DP / 4u; c4++) {\n//#endif\n//#else"
PV_HEAD = """        for (var c4 = 0u; c4 < BN / 4u; c4++) {
          var pv: array<vec4<f32>, RPT>;
          for (var i = 0u; i < RPT; i++) { pv[i] = kp_s[(rg * RPT + i) * (BN / 4u) + (c4 + rg) % (BN / 4u)]; }
          for (var cc = 0u; cc < 4u; cc++) {
            for (var j"""
if name in ('noS', 'noPV', 'noSPV'):
    if name != 'noPV':
        sub(S_HEAD, S_HEAD.replace('c4 < DP / 4u', 'c4 < 0u'))
    if name != 'noS':
        sub(PV_HEAD, PV_HEAD.replace('c4 < BN / 4u', 'c4 < 0u'))
if name in ('qpipe', 'qppipe'):
    sub("""//#if Q_GLOBAL
//#if PADDED
      for (var c4 = 0u; c4 < hd / 4u; c4++) {""", """//#if Q_GLOBAL
      var qn: array<vec4<f32>, RPT>;
      for (var i = 0u; i < RPT; i++) { qn[i] = q[qrow[i]]; }
//#if PADDED
      let nc4 = hd / 4u;
      for (var c4 = 0u; c4 < hd / 4u; c4++) {""")
    sub(S_HEAD, S_HEAD.replace("{\n//#endif", "{\n        let nc4 = DP / 4u;\n//#endif"))
    sub("        for (var i = 0u; i < RPT; i++) { qv[i] = q[qrow[i] + c4]; }",
        "        qv = qn;\n        let cn = select(c4 + 1u, 0u, c4 + 1u >= nc4);\n        for (var i = 0u; i < RPT; i++) { qn[i] = q[qrow[i] + cn]; }")
if name in ('ppipe', 'qppipe'):
    sub(PV_HEAD, """        var pn: array<vec4<f32>, RPT>;
        for (var i = 0u; i < RPT; i++) { pn[i] = kp_s[(rg * RPT + i) * (BN / 4u) + rg % (BN / 4u)]; }
        for (var c4 = 0u; c4 < BN / 4u; c4++) {
          let pv = pn;
          for (var i = 0u; i < RPT; i++) { pn[i] = kp_s[(rg * RPT + i) * (BN / 4u) + (c4 + 1u + rg) % (BN / 4u)]; }
          for (var cc = 0u; cc < 4u; cc++) {
            for (var j""")
prog = open(f'{W}/src/backends/webgpu/program.ts').read()
if 'soft' in parts:
    sub("""        for (var i = 0u; i < RPT; i++) {
          for (var w = 0u; w < NWB; w++) { okb[i][w] = tile_bits(mask_id, mask0, rg * RPT + i, sub * BN + w * 32u, ncols, w); }
        }
      }""", """        for (var i = 0u; i < RPT; i++) {
          for (var w = 0u; w < NWB; w++) { okb[i][w] = tile_bits(mask_id, mask0, rg * RPT + i, sub * BN + w * 32u, ncols, w); }
          for (var j = 0u; j < CPT; j++) { s[i][j] = select(ninf, s[i][j], allowed(okb[i], cg * CPT + j)); }
        }
      }""")
    sub("""        var mx = m_i[i];
        for (var j = 0u; j < CPT; j++) {
          if (masked) {
            let c = cg * CPT + j;
            s[i][j] = select(ninf, s[i][j], allowed(okb[i], c));
          }
          mx = max(mx, s[i][j]);
        }
        let m_new = row_max(mx, rg, cg, i);""", """        var mx = s[i][0];
        for (var j = 1u; j < CPT; j++) { mx = max(mx, s[i][j]); }
//#if Q_GLOBAL
        mx *= prm.scale;
//#endif
        let m_new = row_max(max(m_i[i], mx), rg, cg, i);""")
    sub("""          s[i][j] = exp2(s[i][j] - safe);""", """//#if Q_GLOBAL
          s[i][j] = exp2(fma(s[i][j], prm.scale, -safe));
//#else
          s[i][j] = exp2(s[i][j] - safe);
//#endif""")
    sub("""//#if Q_GLOBAL
      for (var i = 0u; i < RPT; i++) { for (var j = 0u; j < CPT; j++) { s[i][j] *= prm.scale; } }
//#endif
""", "")
if 'su2' in parts:
    sub(S_HEAD, S_HEAD.replace('c4++) {', 'c4 += 2u) { for (var h = 0u; h < 2u; h++) {'))
    sub("""//#endif
        var qv: array<vec4<f32>, RPT>;""", """//#endif
        let c4h = c4 + h;
        var qv: array<vec4<f32>, RPT>;""")
    sub("        for (var i = 0u; i < RPT; i++) { qv[i] = q[qrow[i] + c4]; }", "        for (var i = 0u; i < RPT; i++) { qv[i] = q[qrow[i] + c4h]; }")
    sub("          let kv = kp_s[(cg * CPT + j) * (DP / 4u) + (c4 + cg) % (DP / 4u)];", "          let kv = kp_s[(cg * CPT + j) * (DP / 4u) + (c4h + cg) % (DP / 4u)];")
    sub("""        }
      }
//#if Q_GLOBAL
      for (var i""" if 'soft' not in parts else """        }
      }

      // Allowed bits""", ("""        }
      } }
//#if Q_GLOBAL
      for (var i""" if 'soft' not in parts else """        }
      } }

      // Allowed bits"""))
if 'pvu2' in parts:
    assert s.count(PV_HEAD) == 1
    start = s.index(PV_HEAD)
    # the unmasked loop: header, pv loads with c4 -> c4 + h, then its body closed by '        }\n      }\n    }\n  }'
    end = s.index('\n        }\n      }\n    }\n  }', start)
    body = s[start:end]
    body = body.replace('for (var c4 = 0u; c4 < BN / 4u; c4++) {', 'for (var c4 = 0u; c4 < BN / 4u; c4 += 2u) { for (var h = 0u; h < 2u; h++) {\n          let c4h = c4 + h;', 1)
    body = body.replace('(c4 + rg)', '(c4h + rg)').replace('(c4 * 4u + cc)', '(c4h * 4u + cc)')
    s = s[:start] + body + ' }' + s[end:]
if 'su2' in parts or 'pvu2' in parts:
    unroll_bounds("'2u': 2,")
if 'nob12' in parts:
    sub("      workgroupBarrier(); // the previous tile's P·V is done with kp_s and v_s\n", "")
    sub("//#endif\n      workgroupBarrier();\n\n      // S = Q", "//#endif\n\n      // S = Q")
if 'nob34' in parts:
    sub("      workgroupBarrier(); // every lane is done reading K from kp_s\n", "")
    sub("      }\n      workgroupBarrier();\n\n      // O += P", "      }\n\n      // O += P")
if 'noexp' in parts:
    sub("          s[i][j] = exp2(fma(s[i][j], prm.scale, -safe));", "          s[i][j] = fma(s[i][j], prm.scale, -safe);")
if 'nomax' in parts:
    sub("""  var m = max(x, subgroupShuffleXor(x, 1u));
  m = max(m, subgroupShuffleXor(m, 2u));
  return max(m, subgroupShuffleXor(m, 4u));""", "  return x;")
if 'lazy' in parts:
    sub("        for (var j = 0u; j < DPT / 4u; j++) { acc[i][j] *= alpha[i]; }",
        "        if (alpha[i] != 1.0) { for (var j = 0u; j < DPT / 4u; j++) { acc[i][j] *= alpha[i]; } }")
if 'pst4' in parts:
    sub("""        for (var j = 0u; j < CPT; j++) {
          let c = cg * CPT + j;
          kp_s[(rg * RPT + i) * (BN / 4u) + (c / 4u + rg) % (BN / 4u)][c % 4u] = s[i][j];
        }""", """        kp_s[(rg * RPT + i) * (BN / 4u) + (cg * 2u + rg) % (BN / 4u)] = vec4<f32>(s[i][0], s[i][1], s[i][2], s[i][3]);
        kp_s[(rg * RPT + i) * (BN / 4u) + (cg * 2u + 1u + rg) % (BN / 4u)] = vec4<f32>(s[i][4], s[i][5], s[i][6], s[i][7]);""")
if 'sping' in parts or 'sping2' in parts:
    fa = "fma({q}[i].w, kv.w, fma({q}[i].z, kv.z, fma({q}[i].y, kv.y, fma({q}[i].x, kv.x, s[i][j]))))"
    sub("""//#if Q_GLOBAL
//#if PADDED
      for (var c4 = 0u; c4 < hd / 4u; c4++) {
//#else
      for (var c4 = 0u; c4 < DP / 4u; c4++) {
//#endif
//#else""", """//#if Q_GLOBAL
//#if !PADDED
      var qa: array<vec4<f32>, RPT>;
      for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i]]; }
      for (var c4 = 0u; c4 < DP / 4u; c4 += 2u) {
        var qb: array<vec4<f32>, RPT>;
        for (var i = 0u; i < RPT; i++) { qb[i] = q[qrow[i] + c4 + 1u]; }
        for (var j = 0u; j < CPT; j++) {
          let kv = kp_s[(cg * CPT + j) * (DP / 4u) + (c4 + cg) % (DP / 4u)];
          for (var i = 0u; i < RPT; i++) { s[i][j] = """ + fa.format(q='qa') + """; }
        }
        for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i] + (c4 + 2u) % (DP / 4u)]; }
        for (var j = 0u; j < CPT; j++) {
          let kv = kp_s[(cg * CPT + j) * (DP / 4u) + (c4 + 1u + cg) % (DP / 4u)];
          for (var i = 0u; i < RPT; i++) { s[i][j] = """ + fa.format(q='qb') + """; }
        }
      }
      for (var c4 = 0u; c4 < 0u; c4++) {
//#else
      for (var c4 = 0u; c4 < hd / 4u; c4++) {
//#endif
//#else""")
if 'pping' in parts or 'pping2' in parts:
    sub(PV_HEAD + """ = 0u; j < DPT / 4u; j++) {
              let vv = v_s[(c4 * 4u + cc) * (DP / 4u) + j * TPR + cg];
              for (var i = 0u; i < RPT; i++) { acc[i][j] += pv[i][cc] * vv; }
            }
          }
        }""", """        var pa: array<vec4<f32>, RPT>;
        for (var i = 0u; i < RPT; i++) { pa[i] = kp_s[(rg * RPT + i) * (BN / 4u) + rg % (BN / 4u)]; }
        for (var c4 = 0u; c4 < BN / 4u; c4 += 2u) {
          var pb: array<vec4<f32>, RPT>;
          for (var i = 0u; i < RPT; i++) { pb[i] = kp_s[(rg * RPT + i) * (BN / 4u) + (c4 + 1u + rg) % (BN / 4u)]; }
          for (var cc = 0u; cc < 4u; cc++) {
            for (var j = 0u; j < DPT / 4u; j++) {
              let vv = v_s[(c4 * 4u + cc) * (DP / 4u) + j * TPR + cg];
              for (var i = 0u; i < RPT; i++) { acc[i][j] += pa[i][cc] * vv; }
            }
          }
          for (var i = 0u; i < RPT; i++) { pa[i] = kp_s[(rg * RPT + i) * (BN / 4u) + (c4 + 2u + rg) % (BN / 4u)]; }
          for (var cc = 0u; cc < 4u; cc++) {
            for (var j = 0u; j < DPT / 4u; j++) {
              let vv = v_s[((c4 + 1u) * 4u + cc) * (DP / 4u) + j * TPR + cg];
              for (var i = 0u; i < RPT; i++) { acc[i][j] += pb[i][cc] * vv; }
            }
          }
        }""")
if 'sping2' in parts:
    sub("      for (var c4 = 0u; c4 < DP / 4u; c4 += 2u) {\n        var qb", "      for (var c2 = 0u; c2 < DP / 8u; c2++) {\n        let c4 = c2 * 2u;\n        var qb")
if 'pping2' in parts:
    sub("        for (var c4 = 0u; c4 < BN / 4u; c4 += 2u) {\n          var pb", "        for (var c2 = 0u; c2 < BN / 8u; c2++) {\n          let c4 = c2 * 2u;\n          var pb")
if 'pvping' in parts:
    def half(p, v, c4):
        return f"""          for (var j = 0u; j < DPT / 4u; j++) {{
            for (var i = 0u; i < RPT; i++) {{ acc[i][j] += {p}[i][0] * {v}[j]; }}
          }}
          for (var c1 = 0u; c1 < 3u; c1++) {{
            for (var j = 0u; j < DPT / 4u; j++) {{
              let vv = v_s[({c4} * 4u + c1 + 1u) * (DP / 4u) + j * TPR + cg];
              for (var i = 0u; i < RPT; i++) {{ acc[i][j] += {p}[i][c1 + 1u] * vv; }}
            }}
          }}"""
    sub(PV_HEAD + """ = 0u; j < DPT / 4u; j++) {
              let vv = v_s[(c4 * 4u + cc) * (DP / 4u) + j * TPR + cg];
              for (var i = 0u; i < RPT; i++) { acc[i][j] += pv[i][cc] * vv; }
            }
          }
        }""", """        var pa: array<vec4<f32>, RPT>;
        var va: array<vec4<f32>, DPT / 4u>;
        for (var i = 0u; i < RPT; i++) { pa[i] = kp_s[(rg * RPT + i) * (BN / 4u) + rg %% (BN / 4u)]; }
        for (var j = 0u; j < DPT / 4u; j++) { va[j] = v_s[j * TPR + cg]; }
        for (var c2 = 0u; c2 < BN / 8u; c2++) {
          let c4 = c2 * 2u;
          var pb: array<vec4<f32>, RPT>;
          var vb: array<vec4<f32>, DPT / 4u>;
          for (var i = 0u; i < RPT; i++) { pb[i] = kp_s[(rg * RPT + i) * (BN / 4u) + (c4 + 1u + rg) %% (BN / 4u)]; }
          for (var j = 0u; j < DPT / 4u; j++) { vb[j] = v_s[(c4 + 1u) * 4u * (DP / 4u) + j * TPR + cg]; }
%s
          for (var i = 0u; i < RPT; i++) { pa[i] = kp_s[(rg * RPT + i) * (BN / 4u) + (c4 + 2u + rg) %% (BN / 4u)]; }
          for (var j = 0u; j < DPT / 4u; j++) { va[j] = v_s[(c4 + 2u) %% (BN / 4u) * 4u * (DP / 4u) + j * TPR + cg]; }
%s
        }""" % (half('pa', 'va', 'c4'), half('pb', 'vb', '(c4 + 1u)')))
    unroll_bounds("'3u': 3,")
if 'qkeep' in parts:
    sub("""      var qa: array<vec4<f32>, RPT>;
      for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i]]; }
      for (var c2 = 0u; c2 < DP / 8u; c2++) {""", "      for (var c2 = 0u; c2 < DP / 8u; c2++) {")
    sub("  for (var i = 0u; i < RPT; i++) { qrow[i] = (base + min(row0 + rg * RPT + i, nq - 1u) * stride) / 4u; }\n",
        "  for (var i = 0u; i < RPT; i++) { qrow[i] = (base + min(row0 + rg * RPT + i, nq - 1u) * stride) / 4u; }\n//#if !PADDED\n  var qa: array<vec4<f32>, RPT>;\n  for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i]]; }\n//#endif\n")
if 'kping' in parts:
    half = lambda qn, kn, c4: k_held('kp_s', qn, kn, c4)
    sub("""      for (var c2 = 0u; c2 < DP / 8u; c2++) {
        let c4 = c2 * 2u;
        var qb: array<vec4<f32>, RPT>;
        for (var i = 0u; i < RPT; i++) { qb[i] = q[qrow[i] + c4 + 1u]; }
        for (var j = 0u; j < CPT; j++) {
          let kv = kp_s[(cg * CPT + j) * (DP / 4u) + (c4 + cg) % (DP / 4u)];
          for (var i = 0u; i < RPT; i++) { s[i][j] = mac(s[i][j], qa[i], kv); }
        }
        for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i] + (c4 + 2u) % (DP / 4u)]; }
        for (var j = 0u; j < CPT; j++) {
          let kv = kp_s[(cg * CPT + j) * (DP / 4u) + (c4 + 1u + cg) % (DP / 4u)];
          for (var i = 0u; i < RPT; i++) { s[i][j] = mac(s[i][j], qb[i], kv); }
        }
      }""", """      var ka = kp_s[(cg * CPT) * (DP / 4u) + cg % (DP / 4u)];
      for (var c2 = 0u; c2 < DP / 8u; c2++) {
        let c4 = c2 * 2u;
        var qb: array<vec4<f32>, RPT>;
        for (var i = 0u; i < RPT; i++) { qb[i] = q[qrow[i] + c4 + 1u]; }
        let kb = kp_s[(cg * CPT) * (DP / 4u) + (c4 + 1u + cg) % (DP / 4u)];
""" + half('qa', 'ka', 'c4') + """
        for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i] + (c4 + 2u) % (DP / 4u)]; }
        ka = kp_s[(cg * CPT) * (DP / 4u) + (c4 + 2u + cg) % (DP / 4u)];
""" + half('qb', 'kb', '(c4 + 1u)') + """
      }""")
    unroll_bounds("'CPT - 1u': " + "t.bn / 8 - 1,")
if 'qearly' in parts:
    sub("""      var qa: array<vec4<f32>, RPT>;
      for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i]]; }
      for (var c2 = 0u; c2 < DP / 8u; c2++) {""", "      for (var c2 = 0u; c2 < DP / 8u; c2++) {")
    sub("      workgroupBarrier(); // the previous tile's P·V is done with kp_s and v_s\n",
        "//#if Q_GLOBAL\n//#if !PADDED\n      var qa: array<vec4<f32>, RPT>;\n      for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i]]; }\n//#endif\n//#endif\n      workgroupBarrier(); // the previous tile's P·V is done with kp_s and v_s\n")
if 'rsearly' in parts:
    sub("""        // rows whose max did not move keep their O as it is (alpha == 1)
        if (alpha[i] != 1.0) {
          for (var j = 0u; j < DPT / 4u; j++) { acc[i][j] *= alpha[i]; }
        }
      }
      workgroupBarrier();""", """      }
      workgroupBarrier();""")
    sub("      workgroupBarrier(); // every lane is done reading K from kp_s\n", """      for (var i = 0u; i < RPT; i++) {
        if (alpha[i] != 1.0) {
          for (var j = 0u; j < DPT / 4u; j++) { acc[i][j] *= alpha[i]; }
        }
      }
      workgroupBarrier(); // every lane is done reading K from kp_s
""")
if 'qstage' in parts:
    sub("""var<workgroup> kp_s: array<vec4<f32>, max(BN * DP, BM * BN) / 4u>;
var<workgroup> v_s: array<vec4<f32>, BN * DP / 4u>;""", """const VOFF: u32 = max(BN * DP, BM * BN) / 4u;
const QOFF: u32 = BN * DP / 4u;
var<workgroup> sm: array<vec4<f32>, max(BN * DP, BM * BN) / 4u + BN * DP / 4u>;""")
    s = s.replace('kp_s[', 'sm[').replace('v_s[', 'sm[VOFF + ')
    # Q staging after the K store (prefetch path)
    sub("""        if (i < BN * DP / 4u) { sm[kv_idx(i / (DP / 4u), i % (DP / 4u))] = k_pre[u]; }
      }""", """        if (i < BN * DP / 4u) { sm[kv_idx(i / (DP / 4u), i % (DP / 4u))] = k_pre[u]; }
      }
      for (var u = 0u; u < QL; u++) {
        let i = t + u * WG;
        sm[QOFF + qk_idx(i / (DP / 4u), i % (DP / 4u))] = q[(base + min(row0 + i / (DP / 4u), nq - 1u) * stride) / 4u + i % (DP / 4u)];
      }""")
    sub("      for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i]]; }",
        "      for (var i = 0u; i < RPT; i++) { qa[i] = sm[QOFF + (rg * RPT + i) * (DP / 4u) + rg % 8u]; }")
    sub("        for (var i = 0u; i < RPT; i++) { qb[i] = q[qrow[i] + c4 + 1u]; }",
        "        for (var i = 0u; i < RPT; i++) { qb[i] = sm[QOFF + (rg * RPT + i) * (DP / 4u) + (c4 + 1u + rg % 8u) % (DP / 4u)]; }")
    sub("        for (var i = 0u; i < RPT; i++) { qa[i] = q[qrow[i] + (c4 + 2u) % (DP / 4u)]; }",
        "        for (var i = 0u; i < RPT; i++) { qa[i] = sm[QOFF + (rg * RPT + i) * (DP / 4u) + (c4 + 2u + rg % 8u) % (DP / 4u)]; }")
    # V stored after the barrier that ends S (Q overlaps V)
    vst = """//#if OVERLAP_V
      for (var u = 0u; u < NVL; u++) {
        if (t + u * WG < BN * DP / 4u) { sm[VOFF + t + u * WG] = v_pre[u]; }
      }
//#endif
"""
    # the V store, and after it the next tile's prefetch (which overwrites v_pre), move below it
    a = s.index(vst)
    b = s.index("      workgroupBarrier(); // every lane is done reading K from kp_s\n")
    moved = s[a:b]
    assert moved.startswith(vst) and '//#if PREFETCH' in moved
    s = s[:a] + s[b:]
    sub("      workgroupBarrier(); // every lane is done reading K from kp_s\n", "      workgroupBarrier(); // every lane is done reading K from kp_s\n" + moved)
    unroll_bounds("QL: t.bm * t.dp / 4 / ((t.bm / t.rpt) * 8),")
if 'kping4' in parts:
    A = """        for (var j = 0u; j < CPT; j++) {
          let kv = sm[(cg * CPT + j) * (DP / 4u) + (c4 + cg) % (DP / 4u)];
          for (var i = 0u; i < RPT; i++) { s[i][j] = mac(s[i][j], qa[i], kv); }
        }"""
    B = A.replace('(c4 + cg)', '(c4 + 1u + cg)').replace('qa[i]', 'qb[i]')
    one = lambda qn, kn, c4: k_held('sm', qn, kn, c4)
    sub(A, "        let kb = sm[(cg * CPT) * (DP / 4u) + (c4 + 1u + cg) % (DP / 4u)];\n" + one('qa', 'ka', 'c4'))
    sub(B, "        ka = sm[(cg * CPT) * (DP / 4u) + (c4 + 2u + cg) % (DP / 4u)];\n" + one('qb', 'kb', 'c4 + 1u'))
    sub("      for (var c2 = 0u; c2 < DP / 8u; c2++) {\n        let c4 = c2 * 2u;\n        var qb",
        "      var ka = sm[(cg * CPT) * (DP / 4u) + cg % (DP / 4u)];\n      for (var c2 = 0u; c2 < DP / 8u; c2++) {\n        let c4 = c2 * 2u;\n        var qb")
    unroll_bounds("'CPT - 1u': t.bn / 8 - 1,")
if 'vlate4' in parts:
    a = s.index("//#if Q_TILE\n      workgroupBarrier(); // every lane is done reading K and Q: V may overwrite Q\n//#endif\n")
    b = s.index("//#if !Q_TILE\n      workgroupBarrier(); // every lane is done reading K\n//#endif\n")
    seg = s[a:b]
    pf = seg[seg.index("//#if PREFETCH"):]
    s = s[:a] + "      let v_cur = v_pre;\n" + pf + """      workgroupBarrier(); // every lane is done reading K and Q: V may overwrite Q
      for (var u = 0u; u < NVL; u++) {
        if (t + u * WG < BN * DP / 4u) { sm[VOFF + t + u * WG] = v_cur[u]; }
      }
""" + s[b + len("//#if !Q_TILE\n      workgroupBarrier(); // every lane is done reading K\n//#endif\n"):]
if 'pvfull4' in parts:
    unroll_bounds("'BN / 8u': t.bn / 8,")
if 'sfull4' in parts:
    unroll_bounds("'DP / 8u': t.dp / 8,")
if 'cstride' in parts:
    sub("  let stride = prm.step * prm.n_embd;", "  let stride = 1024u;")
for g in ('g64x32', 'g64x64'):
    if g in parts:
        old = "  const first = "
        assert prog.count(old) == 1
        prog = prog.replace(old, f"  const first = tiles(true, [64]).filter((t) => t.bn === {g[-2:]});\n  const first0 = ")
known = ('noS', 'noPV', 'noSPV', 'qpipe', 'ppipe', 'qppipe', 'head', 'soft', 'su2', 'pvu2', 'nob12', 'nob34', 'noexp', 'nomax', 'lazy', 'pst4', 'g64x32', 'g64x64', 'cstride', 'sping', 'pping', 'pping2', 'pvping', 'sping2', 'qkeep', 'kping', 'qearly', 'rsearly', 'qstage', 'kping4', 'vlate4', 'pvfull4', 'sfull4')
if any(x not in known for x in parts):
    raise SystemExit('unknown variant ' + name)
open(f'{W}/src/backends/webgpu/program.ts', 'w').write(prog)
open(f'{W}/shaders/bsattn_fwd.wgsl', 'w').write(s)
build(W, name)
print('built', name)
