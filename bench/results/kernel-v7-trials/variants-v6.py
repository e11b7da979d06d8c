# Kernel variants of shader v6 for the experiments in bench/NOTES-gpu.md (session of 2026-11-27,
# third): edits the shader (and program.ts / config.ts) of a worktree of v6 at /tmp/v6, rebuilds
# it and copies dist/ to dists/<name>. Timing-only variants (nobar, nopv, s1, noexp) compute
# wrong results on purpose.  python3 variants-v6.py <name>
import os, subprocess, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from variant_build import build, worktree
name = sys.argv[1]
s = open('/tmp/diag/v6.wgsl').read()
L = s.split('\n')
def drop_prefetch(s, x):
    """The next-tile prefetch block without its loads of x ('k' or 'v')."""
    i0 = s.index('// the next tile: (e, sub + 1)')
    t = s[i0:].replace(f'          {x}_pre[u] = vec4<f32>(0.0);\n', '', 1).replace(f'            {x}_pre[u] = {x}[at];\n', '', 1)
    assert t != s[i0:]
    return s[:i0] + t
def rep(a, b, count=1):
    global s
    assert s.count(a) >= 1, a
    s = s.replace(a, b, count)
if name == 'nobar':   # the two barriers around the P store removed (race: timing only)
    rep('      workgroupBarrier(); // every lane is done reading K from kp_s\n', '')
    i = s.index('for (var j = 0u; j < DPT / 4u; j++) { acc[i][j] *= alpha[i]; }')
    k = s.index('      workgroupBarrier();\n', i)
    s = s[:k] + s[k+len('      workgroupBarrier();\n'):]
elif name == 'nopv':  # unmasked P·V FMAs removed
    rep('for (var i = 0u; i < RPT; i++) { acc[i][j] += pv[i][cc] * vv; }', 'if (cc == 9u) { acc[0][j] += pv[0][cc] * vv; }')
elif name == 's1':    # S with 1 of 4 FMAs per chunk
    rep('s[i][j] = fma(qv[i].w, kv.w, fma(qv[i].z, kv.z, fma(qv[i].y, kv.y, fma(qv[i].x, kv.x, s[i][j]))));', 's[i][j] = fma(qv[i].x, kv.x, s[i][j]);')
elif name == 'noexp':
    rep('s[i][j] = exp2(s[i][j] - safe);', 's[i][j] = s[i][j] - safe;')
elif name == 'unrollc4':
    s = s.replace('for (var c4 = 0u; c4 < DP / 4u; c4++)', 'for (var c4 = 0u; c4 < DC; c4++)').replace('for (var c4 = 0u; c4 < BN / 4u; c4++) {\n          var pv: array<vec4<f32>, RPT>;\n          for (var i = 0u; i < RPT; i++) { pv[i] = kp_s[p_idx(rg * RPT + i, c4)]; }\n          for (var cc = 0u; cc < 4u; cc++) {\n            for', 'for (var c4 = 0u; c4 < BNC; c4++) {\n          var pv: array<vec4<f32>, RPT>;\n          for (var i = 0u; i < RPT; i++) { pv[i] = kp_s[p_idx(rg * RPT + i, c4)]; }\n          for (var cc = 0u; cc < 4u; cc++) {\n            for')
    assert 'c4 < BNC' in s and 'c4 < DC' in s
    s = s.replace('const TPR: u32 = 8u;', 'const TPR: u32 = 8u;\nconst DC: u32 = DP / 4u;\nconst BNC: u32 = BN / 4u;')
elif name in ('vint', 'vc', 'vc-rpt2', 'vint-rpt2'):
    rep('let vv = v_s[(c4 * 4u + cc) * (DP / 4u) + cg * (DPT / 4u) + j];', 'let vv = v_s[(c4 * 4u + cc) * (DP / 4u) + j * TPR + cg];')
    rep('let vv = v_s[c * (DP / 4u) + cg * (DPT / 4u) + j];', 'let vv = v_s[c * (DP / 4u) + j * TPR + cg];')
    rep('if (cg * DPT + j * 4u < hd) { o[dst / 4u + cg * (DPT / 4u) + j] = acc[i][j] * inv; }', 'if ((j * TPR + cg) * 4u < hd) { o[dst / 4u + j * TPR + cg] = acc[i][j] * inv; }')
    rep('let d = cg * DPT + j;', 'let d = ((j / 4u) * TPR + cg) * 4u + j % 4u;')
    if name.startswith('vc'):
        rep('(c4 ^ ((row / CPT) & 7u))', '(c4 ^ (row & 7u))')
        rep('kp_s[kv_idx(cg * CPT + j, c4)]', 'kp_s[kv_idx(j * TPR + cg, c4)]')
        assert s.count('let c = cg * CPT + j;') == 2
        s = s.replace('let c = cg * CPT + j;', 'let c = j * TPR + cg;')
    if name.endswith('rpt2'):
        c = '/tmp/v6/src/config.ts'
        t = open(c).read().replace("o.rowsPerThread !== 4 && o.rowsPerThread", "o.rowsPerThread !== 2 && o.rowsPerThread !== 4 && o.rowsPerThread").replace("rowsPerThread?: 4 | 8;", "rowsPerThread?: 2 | 4 | 8;")
        open(c, 'w').write(t)
elif name == 'pvfma':
    rep('acc[i][j] += pv[i][cc] * vv;', 'acc[i][j] = fma(vec4<f32>(pv[i][cc]), vv, acc[i][j]);')
elif name == 'pfk':
    rep("""        if (i < BN * DP / 4u) { kp_s[kv_idx(i / (DP / 4u), i % (DP / 4u))] = k_pre[u]; }
      }""", """        if (i < BN * DP / 4u) { kp_s[kv_idx(i / (DP / 4u), i % (DP / 4u))] = k_pre[u]; }
        let c = i / (DP / 4u);
        let d4 = i % (DP / 4u);
        v_pre[u] = vec4<f32>(0.0);
        if (i < BN * DP / 4u && c < ncols && d4 * 4u < hd) { v_pre[u] = v[(base + (key0 + c) * stride) / 4u + d4]; }
      }""")
    s = drop_prefetch(s, 'v')
elif name == 'pfv':
    rep("""        if (i < BN * DP / 4u) { kp_s[kv_idx(i / (DP / 4u), i % (DP / 4u))] = k_pre[u]; }
      }""", """        let c = i / (DP / 4u);
        let d4 = i % (DP / 4u);
        var kx = vec4<f32>(0.0);
        if (i < BN * DP / 4u && c < ncols && d4 * 4u < hd) { kx = k[(base + (key0 + c) * stride) / 4u + d4]; }
        if (i < BN * DP / 4u) { kp_s[kv_idx(c, d4)] = kx; }
      }""")
    s = drop_prefetch(s, 'k')
open('/tmp/v6/shaders/bsattn_fwd.wgsl', 'w').write(s)
if name == 'unrollc4':
    p = '/tmp/v6/src/backends/webgpu/program.ts'
    t = open(p).read()
    t2 = t.replace("NWB: Math.ceil(t.bn / 32), '4u': 4,", "NWB: Math.ceil(t.bn / 32), '4u': 4, DC: t.dp / 4, BNC: t.bn / 4,")
    assert t2 != t
    open(p, 'w').write(t2)
build('/tmp/v6', name)
subprocess.run('git checkout shaders src', shell=True, cwd='/tmp/v6', check=True)
