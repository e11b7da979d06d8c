# Kernel variants of shader v7 (bench/NOTES-gpu.md): 'pfe' issues the next tile's K/V loads at
# the tile start (timing of the default, prefetching path only).  python3 variants-v7.py pfe
# variants of kernel v7 (commit e68be41), built in /tmp/v7w (a worktree of HEAD with v7's kernel files)
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from variant_build import build, worktree
name = sys.argv[1]
W = worktree('/tmp/v7w', 'e68be41')  # the kernel v7 commit: the edits below are written against it
s = open(f'{W}/shaders/bsattn_fwd.wgsl').read()
L = s.split('\n')
if name == 'pfe':
    # prefetch block moved to the tile start (after K and V of this tile are stored), OVERLAP_V store dropped
    a = s.index('//#if OVERLAP_V\n      for (var u = 0u; u < NVL; u++) {\n        if (t + u * WG < BN * DP / 4u) { v_s[t + u * WG] = v_pre[u]; }')
    b = s.index('//#endif\n', a) + len('//#endif\n')
    ov = s[a:b]
    s = s[:a] + s[b:]
    a = s.index('//#if PREFETCH\n      {\n        // the next tile')
    b = s.index('//#endif\n', a) + len('//#endif\n')
    pf = s[a:b]
    s = s[:a] + s[b:]
    anchor = "        if (i < BN * DP / 4u) { kp_s[kv_idx(i / (DP / 4u), i % (DP / 4u))] = k_pre[u]; }\n      }\n"
    assert anchor in s
    store_v = "      for (var u = 0u; u < NVL; u++) {\n        if (t + u * WG < BN * DP / 4u) { v_s[t + u * WG] = v_pre[u]; }\n      }\n"
    inner = pf.split('\n', 1)[1].rsplit('//#endif', 1)[0]
    s = s.replace(anchor, anchor + store_v + inner)
open(f'{W}/shaders/bsattn_fwd.wgsl', 'w').write(s)
build(W, name)
