// The WebGPU kernel variants (src/backends/webgpu/variants.ts) and their programs
// (program.ts), pure functions: which variant each (block, head dim, workgroup memory) gets,
// and the shader text of its flags. The H100 figures behind the policy are in
// docs/kernel-history.md (GPU kernels v8, v9).
import { describe, expect, it } from 'vitest';
import { decodeLanes, decodeRows, decodeText, programName, programText } from '../src/backends/webgpu/program.js';
import { VARIANTS, chooseVariant, findVariant, variantName, whyNot, workgroupBytes } from '../src/backends/webgpu/variants.js';

const H100 = 49152, LAVAPIPE = 32768;
const text = (name: string, bs: number, headDim: number) => programText({ variant: findVariant(name)!, bs, headDim });

describe('the variant table', () => {
  it('names say op, tile, Q placement and features, and are unique', () => {
    expect(new Set(VARIANTS.map((v) => v.name)).size).toBe(VARIANTS.length);
    for (const v of VARIANTS) {
      expect(v.name).toBe(variantName(v.bm, v.bn, v.q, v.subgroups));
      expect(v.name).toMatch(/^bsattn_fwd_f32_q(8|16|32|64|128)_k(8|16|32|64)(_qglobal|_qtile)?__(subgroups|plain)$/);
    }
  });

  it('every automatic variant is the choice for some block, head dim and device; the others are only named', () => {
    const chosen = new Set<string>();
    for (const limit of [16384, 32768, 49152, 65536]) {
      for (const sg of [true, false]) {
        for (const bs of [8, 16, 32, 64, 128]) {
          for (let hd = 1; hd <= 1024; hd++) {
            const v = chooseVariant(bs, hd, limit, sg);
            if (v) chosen.add(v.name);
          }
        }
      }
    }
    expect([...chosen].sort()).toEqual(VARIANTS.filter((v) => v.auto).map((v) => v.name).sort());
  });

  it('a variant says why it cannot run a call', () => {
    const v = findVariant('bsattn_fwd_f32_q128_k64_qtile__subgroups')!;
    expect(whyNot(v, 128, 64, H100, true)).toBeNull();
    expect(whyNot(v, 64, 64, H100, true)).toMatch(/128×64 tiles do not divide block size 64/);
    expect(whyNot(v, 128, 64, H100, false)).toMatch(/needs subgroups/);
    expect(whyNot(v, 128, 62, H100, true)).toMatch(/head dim divisible by 4/);
    expect(whyNot(v, 128, 60, H100, true)).toMatch(/unpadded head dim/);
    expect(whyNot(v, 128, 128, H100, true)).toMatch(/does not fit beside K/);
    expect(whyNot(v, 128, 64, LAVAPIPE, true)).toMatch(/needs 49152 bytes of workgroup memory at head dim 64 \(the device has 32768\)/);
  });
});

describe('chooseVariant', () => {
  it('block 128, head dim 64, 48 KiB: 128-row tiles with Q staged per tile beside K, exactly 48 KiB', () => {
    const v = chooseVariant(128, 64, H100, true)!;
    expect(v.name).toBe('bsattn_fwd_f32_q128_k64_qtile__subgroups');
    expect(workgroupBytes(v, 64)).toBe(H100);
  });

  it('block 64, head dim 64, 48 KiB: 64-row tiles with Q staged', () => {
    const v = chooseVariant(64, 64, H100, true)!;
    expect([v.bm, v.bn, v.q]).toEqual([64, 64, 'staged']);
    expect(workgroupBytes(v, 64)).toBe(H100);
  });

  it('32 KiB (lavapipe): block 128 takes 128×32 tiles from global Q; block 64 stages Q in 64×32', () => {
    expect(chooseVariant(128, 64, LAVAPIPE, true)!.name).toBe('bsattn_fwd_f32_q128_k32_qglobal__subgroups');
    expect(chooseVariant(64, 64, LAVAPIPE, true)!.name).toBe('bsattn_fwd_f32_q64_k32__subgroups');
    // without subgroups the row reductions take BM·8 floats more: 64×32 no longer fits
    expect(chooseVariant(64, 64, LAVAPIPE, false)!.name).toBe('bsattn_fwd_f32_q64_k16__plain');
  });

  it('a head dim not divisible by 4: Q is always staged, tiles ≤ 64 rows', () => {
    const v = chooseVariant(128, 6, H100, true)!;
    expect(v.q).toBe('staged');
    expect(v.bm).toBeLessThanOrEqual(64);
  });

  it('large head dims: Q from global memory when no staged tile fits; null past the bound', () => {
    const v = chooseVariant(64, 384, LAVAPIPE, true)!;
    expect(v.q).toBe('global');
    expect(workgroupBytes(v, 384)).toBeLessThanOrEqual(LAVAPIPE);
    expect(VARIANTS.filter((x) => x.q === 'staged').every((x) => whyNot(x, 64, 384, LAVAPIPE, true) !== null)).toBe(true);
    expect(chooseVariant(64, 385, LAVAPIPE, true)).toBeNull(); // not vec4: staged only
    expect(chooseVariant(64, 768, H100, true)).not.toBeNull();
    expect(chooseVariant(64, 800, H100, true)).toBeNull();
  });

  it('a named variant is used where it applies, else the automatic choice', () => {
    const pinned = 'bsattn_fwd_f32_q64_k64_qtile__subgroups';
    expect(chooseVariant(128, 64, LAVAPIPE, true, pinned)!.name).toBe(pinned);
    expect(chooseVariant(32, 64, LAVAPIPE, true, pinned)).toEqual(chooseVariant(32, 64, LAVAPIPE, true));
    expect(chooseVariant(128, 64, 16384, true, pinned)).toEqual(chooseVariant(128, 64, 16384, true));
    expect(chooseVariant(128, 6, LAVAPIPE, true, pinned)!.q).toBe('staged');
    expect(chooseVariant(64, 64, LAVAPIPE, true, 'bsattn_fwd_f32_q64_k16__plain')!.name).toBe('bsattn_fwd_f32_q64_k16__plain');
  });

  it('the program name is the variant specialised to the block and padded head dim', () => {
    const v = findVariant('bsattn_fwd_f32_q128_k64_qglobal__subgroups')!;
    expect(programName({ variant: v, bs: 128, headDim: 64 })).toBe('bsattn_fwd_f32_q128_k64_qglobal__subgroups:bs128_dp64');
    expect(programName({ variant: v, bs: 128, headDim: 80 })).toBe('bsattn_fwd_f32_q128_k64_qglobal__subgroups:bs128_dp96_padded');
    expect(programName({ variant: v, bs: 128, headDim: 96 })).toBe('bsattn_fwd_f32_q128_k64_qglobal__subgroups:bs128_dp96');
    expect(programName({ variant: findVariant('bsattn_fwd_f32_q16_k16__plain')!, bs: 16, headDim: 5 })).toBe('bsattn_fwd_f32_q16_k16__plain:bs16_dp32_scalar_padded');
  });
});

describe('programText', () => {
  it('every variant preprocesses to a program with no directive or stage call left', () => {
    for (const v of VARIANTS) {
      const headDim = v.q === 'staged' ? 5 : 32;
      const t = programText({ variant: v, bs: 128, headDim });
      expect(t, v.name).not.toMatch(/^\s*\/\/#/m);
      expect(t, v.name).not.toMatch(/\b(stage_q|load_kv|store_kv|store_v|scores|mask_scores|softmax_update|store_p|accumulate_pv|store_o)\(/);
      expect(t.startsWith('enable subgroups;'), v.name).toBe(v.subgroups);
    }
  });

  it('the K/V prefetch is written once and pasted twice (before the loop and for each next tile)', () => {
    const t = text('bsattn_fwd_f32_q128_k64_qtile__subgroups', 128, 64);
    expect(t.match(/k_pre\[0u\] = k\[at\];/g)).toHaveLength(2);
  });

  it('Q_GLOBAL drops the Q tile from workgroup memory and reads q in the S loop (chunk pairs, the next chunk loaded ahead); PADDED bounds the loop by hd', () => {
    const g = text('bsattn_fwd_f32_q128_k64_qglobal__subgroups', 128, 64);
    expect(g).not.toMatch(/var<workgroup> q_s/);
    // the pair loop is unrolled by the host at head dims <= 64 (8 copies), a loop above
    expect(g).toMatch(/\{\s*let c4 = 7u \* 2u;\s*var qb/);
    expect(g).not.toMatch(/for \(var c2/);
    const wide = text('bsattn_fwd_f32_q128_k64_qglobal__subgroups', 128, 128);
    expect(wide).toMatch(/c2 < DP \/ 8u; c2\+\+\) \{\s*let c4 = c2 \* 2u;\s*var qb/);
    expect(g).toMatch(/qb\[0u\] = q\[qrow\[0u\] \+ c4 \+ 1u\]/);
    expect(g).toMatch(/qa\[0u\] = q\[qrow\[0u\] \+ \(c4 \+ 2u\) % \(DP \/ 4u\)\]/);
    const padded = text('bsattn_fwd_f32_q128_k64_qglobal__subgroups', 128, 60);
    expect(padded).toMatch(/c4 < hd \/ 4u; c4\+\+\) \{\s*var qv/);
    expect(padded).not.toMatch(/var qb/);
    const staged = text(chooseVariant(64, 64, H100, true)!.name, 64, 64);
    expect(staged).toMatch(/for \(var c4 = 0u; c4 < DP \/ 4u; c4\+\+\) \{\s*var qv/);
    expect(staged).toMatch(/var<workgroup> q_s/);
    expect(staged).not.toMatch(/q\[qrow/);
  });

  it('P is stored as vec4s when the key tile is a multiple of 32, else as scalars; the P·V loop walks chunk pairs, unrolled', () => {
    const t = text('bsattn_fwd_f32_q128_k64_qtile__subgroups', 128, 64);
    expect(t).toMatch(/=\s*vec4<f32>\(s\[0u\]\[0u \* 4u\], s\[0u\]\[0u \* 4u \+ 1u\]/);
    expect(t).toMatch(/\{\s*let c4 = 7u \* 2u;\s*var pb/);
    const narrow = text('bsattn_fwd_f32_q128_k16_qglobal__subgroups', 128, 64);
    expect(narrow).not.toMatch(/vec4<f32>\(s\[/);
    expect(narrow).toMatch(/\[c % 4u\] = s\[0u\]\[0u\]/);
  });

  it('Q_TILE: 128×64 tiles at head dim 64 stage Q beside K every tile; not where Q does not fit (128×32 on 32 KiB, head dim 128) or is padded', () => {
    expect(chooseVariant(128, 64, H100, true)!.q).toBe('tile');
    const t = text('bsattn_fwd_f32_q128_k64_qtile__subgroups', 128, 64);
    expect(t).toMatch(/sm\[QOFF \+ qk_idx\(r, i % \(DP \/ 4u\)\)\] = q\[/);
    expect(t).toMatch(/qb\[0u\] = sm\[QOFF \+/);
    expect(t).not.toMatch(/q\[qrow/);
    // V is stored after the barrier that ends S (its memory held Q)
    expect(t.indexOf('V may overwrite Q')).toBeLessThan(t.indexOf('sm[VOFF + t + 0u * WG] = v_pre[0u]'));
    expect(chooseVariant(128, 64, LAVAPIPE, true)!.q).toBe('global');
    expect(chooseVariant(128, 128, H100, true)!.q).toBe('global');
    expect(chooseVariant(128, 60, H100, true)!.q).toBe('global');
    expect(text(chooseVariant(128, 64, LAVAPIPE, true)!.name, 128, 64)).toMatch(/qb\[0u\] = q\[qrow\[0u\] \+ c4 \+ 1u\]/);
  });
});

describe('the flash-decoding program', () => {
  // every padded head dim (a multiple of 32) gets whole vec4s per lane: 160 once took 16 lanes
  // of 2.5 vec4s and the unroller threw (found by the property test)
  it.each(Array.from({ length: 16 }, (_, i) => 32 * (i + 1)))('head dim %i: whole vec4s per lane, a program text', (dp) => {
    const lanes = decodeLanes(dp);
    expect(dp % (4 * lanes)).toBe(0);
    expect(decodeRows(dp)).toBeGreaterThanOrEqual(1);
    for (const subgroups of [true, false]) expect(decodeText(dp, subgroups)).toContain('fn main');
  });
});
