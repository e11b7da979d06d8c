// The WebGPU tile choice (src/backends/webgpu/program.ts), a pure function: which kernel
// configuration each (block, head dim, workgroup memory) gets, and the shader text of the
// flags. The H100 figures behind the policy are in docs/kernel-history.md (GPU kernels v8, v9).
import { describe, expect, it } from 'vitest';
import { chooseTiles, programText, workgroupBytes } from '../src/backends/webgpu/program.js';

const DEFAULTS = { overlapV: true, prefetch: true, fmaS: true, qGlobal: true };
const H100 = 49152, LAVAPIPE = 32768;

describe('chooseTiles', () => {
  it('block 128, head dim 64, 48 KiB: 128-row tiles with Q from global memory (v9), exactly 48 KiB', () => {
    const t = chooseTiles(128, 64, H100, true, DEFAULTS)!;
    expect([t.bm, t.bn, t.rpt, t.qGlobal, t.padded]).toEqual([128, 64, 4, true, false]);
    expect(workgroupBytes(t)).toBe(H100);
  });

  it('block 64, head dim 64, 48 KiB: 64-row tiles with Q staged (v8)', () => {
    const t = chooseTiles(64, 64, H100, true, DEFAULTS)!;
    expect([t.bm, t.bn, t.qGlobal]).toEqual([64, 64, false]);
    expect(workgroupBytes(t)).toBe(H100);
  });

  it('32 KiB (lavapipe): block 128 takes 128×32 tiles from global Q; block 64 stages Q in 64×32', () => {
    const a = chooseTiles(128, 64, LAVAPIPE, true, DEFAULTS)!;
    expect([a.bm, a.bn, a.qGlobal]).toEqual([128, 32, true]);
    const b = chooseTiles(64, 64, LAVAPIPE, true, DEFAULTS)!;
    expect([b.bm, b.bn, b.qGlobal]).toEqual([64, 32, false]);
  });

  it('qGlobal off, or a head dim not divisible by 4: Q is always staged, tiles ≤ 64 rows', () => {
    for (const [hd, prefs] of [[64, { ...DEFAULTS, qGlobal: false }], [6, DEFAULTS]] as const) {
      const t = chooseTiles(128, hd, H100, true, prefs)!;
      expect(t.qGlobal, `head dim ${hd}`).toBe(false);
      expect(t.bm, `head dim ${hd}`).toBeLessThanOrEqual(64);
    }
  });

  it('large head dims: Q from global memory when no staged tile fits; null past the bound', () => {
    const t = chooseTiles(64, 384, LAVAPIPE, true, DEFAULTS)!;
    expect(t.qGlobal).toBe(true);
    expect(workgroupBytes(t)).toBeLessThanOrEqual(LAVAPIPE);
    expect(chooseTiles(64, 384, LAVAPIPE, true, { ...DEFAULTS, qGlobal: false })).toBeNull();
    expect(chooseTiles(64, 385, LAVAPIPE, true, DEFAULTS)).toBeNull(); // not vec4: staged only
    expect(chooseTiles(64, 768, H100, true, DEFAULTS)).not.toBeNull();
    expect(chooseTiles(64, 800, H100, true, DEFAULTS)).toBeNull();
  });

  it('a padded head dim is flagged (the S loop then stops at head_dim / 4)', () => {
    expect(chooseTiles(128, 80, H100, true, DEFAULTS)!.padded).toBe(true);
    expect(chooseTiles(128, 96, H100, true, DEFAULTS)!.padded).toBe(false);
  });
});

describe('programText', () => {
  it('Q_GLOBAL drops the Q tile from workgroup memory and reads q in the S loop (chunk pairs, the next chunk loaded ahead); PADDED bounds the loop by hd', () => {
    const g = { ...chooseTiles(128, 64, H100, true, DEFAULTS)!, qTile: false };
    const text = programText(g);
    expect(text).not.toMatch(/var<workgroup> q_s/);
    // the pair loop is unrolled by the host at head dims <= 64 (8 copies), a loop above
    expect(text).toMatch(/\{\s*let c4 = 7u \* 2u;\s*var qb/);
    expect(text).not.toMatch(/for \(var c2/);
    const wide = programText({ ...g, dp: 128 });
    expect(wide).toMatch(/c2 < DP \/ 8u; c2\+\+\) \{\s*let c4 = c2 \* 2u;\s*var qb/);
    expect(text).toMatch(/qb\[0u\] = q\[qrow\[0u\] \+ c4 \+ 1u\]/);
    expect(text).toMatch(/qa\[0u\] = q\[qrow\[0u\] \+ \(c4 \+ 2u\) % \(DP \/ 4u\)\]/);
    const padded = programText({ ...g, padded: true });
    expect(padded).toMatch(/c4 < hd \/ 4u; c4\+\+\) \{\s*var qv/);
    expect(padded).not.toMatch(/var qb/);
    const staged = programText(chooseTiles(64, 64, H100, true, DEFAULTS)!);
    expect(staged).toMatch(/for \(var c4 = 0u; c4 < DP \/ 4u; c4\+\+\) \{\s*var qv/);
    expect(staged).toMatch(/var<workgroup> q_s/);
    expect(staged).not.toMatch(/q\[qrow/);
  });

  it('P is stored as vec4s when the key tile is a multiple of 32, else as scalars; the P·V loop walks chunk pairs, unrolled', () => {
    const g = chooseTiles(128, 64, H100, true, DEFAULTS)!;
    expect(g.bn).toBe(64);
    const text = programText(g);
    expect(text).toMatch(/=\s*vec4<f32>\(s\[0u\]\[0u \* 4u\], s\[0u\]\[0u \* 4u \+ 1u\]/);
    expect(text).toMatch(/\{\s*let c4 = 7u \* 2u;\s*var pb/);
    const narrow = programText({ ...g, bn: 16 });
    expect(narrow).not.toMatch(/vec4<f32>\(s\[/);
    expect(narrow).toMatch(/\[c % 4u\] = s\[0u\]\[0u\]/);
  });

  it('Q_TILE: 128×64 tiles at head dim 64 stage Q beside K every tile; not where Q does not fit (128×32 on 32 KiB, head dim 128) or is padded', () => {
    const g = chooseTiles(128, 64, H100, true, DEFAULTS)!;
    expect([g.bm, g.bn, g.qGlobal, g.qTile]).toEqual([128, 64, true, true]);
    const text = programText(g);
    expect(text).toMatch(/sm\[QOFF \+ qk_idx\(r, i % \(DP \/ 4u\)\)\] = q\[/);
    expect(text).toMatch(/qb\[0u\] = sm\[QOFF \+/);
    expect(text).not.toMatch(/q\[qrow/);
    // V is stored after the barrier that ends S (its memory held Q)
    expect(text.indexOf('V may overwrite Q')).toBeLessThan(text.indexOf('sm[VOFF + t + 0u * WG] = v_pre[0u]'));
    expect(chooseTiles(128, 64, LAVAPIPE, true, DEFAULTS)!.qTile).toBe(false);
    expect(chooseTiles(128, 128, H100, true, DEFAULTS)!.qTile).toBe(false);
    expect(chooseTiles(128, 60, H100, true, DEFAULTS)!.qTile).toBe(false);
    expect(chooseTiles(128, 64, H100, true, { ...DEFAULTS, prefetch: false })!.qTile).toBe(false);
    expect(programText(chooseTiles(128, 64, LAVAPIPE, true, DEFAULTS)!)).toMatch(/qb\[0u\] = q\[qrow\[0u\] \+ c4 \+ 1u\]/);
  });

  it('a preferred tile shape is used where it divides the block and fits, else the automatic choice', () => {
    const shape = { bm: 64, bn: 64, qGlobal: true };
    const t = chooseTiles(128, 64, LAVAPIPE, true, { ...DEFAULTS, shape })!;
    expect([t.bm, t.bn, t.qGlobal, t.qTile]).toEqual([64, 64, true, true]);
    expect(chooseTiles(32, 64, LAVAPIPE, true, { ...DEFAULTS, shape })).toEqual(chooseTiles(32, 64, LAVAPIPE, true, DEFAULTS));
    expect(chooseTiles(128, 64, 16384, true, { ...DEFAULTS, shape })).toEqual(chooseTiles(128, 64, 16384, true, DEFAULTS));
    expect(chooseTiles(128, 6, LAVAPIPE, true, { ...DEFAULTS, shape })!.qGlobal).toBe(false);
  });
});
