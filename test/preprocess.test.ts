// The WGSL template preprocessor (src/backends/webgpu/preprocess.ts): constants, //#param
// flags and //#if branches, //#inline stages, loop unrolling; and its errors.
import { describe, expect, it } from 'vitest';
import { inlineStages, preprocess, selectBranches, setConsts, unroll } from '../src/backends/webgpu/preprocess.js';
import source from '../shaders/bsattn_fwd.wgsl';

const lines = (s: string) => s.split('\n').filter((l) => l.trim());

describe('setConsts', () => {
  it('rewrites each named constant line once; a missing or repeated one is an error', () => {
    expect(setConsts('const BM: u32 = 64u;  // rows\nconst BN: u32 = 64u;', { BM: 128 })).toBe('const BM: u32 = 128u;  // rows\nconst BN: u32 = 64u;');
    expect(() => setConsts('const BN: u32 = 64u;', { BM: 128 })).toThrow(/const BM must be declared once .*found 0/);
    expect(() => setConsts('const BM: u32 = 1u;\nconst BM: u32 = 2u;', { BM: 3 })).toThrow(/found 2/);
    expect(() => setConsts('const BM: u32 = 1u;', { BM: -1 })).toThrow(/must be a u32/);
  });
});

describe('selectBranches', () => {
  const t = ['//#param A  first', '//#param B', 'x', '//#if A', 'a', '//#if !B', 'a!b', '//#else', 'ab', '//#endif', '//#else', 'na', '//#endif', '//#if A && !B', 'both', '//#endif', 'y'].join('\n');

  it('keeps the branches the flags select, nested, with && and !, and drops the directives', () => {
    expect(lines(selectBranches(t, { A: true, B: false }))).toEqual(['x', 'a', 'a!b', 'both', 'y']);
    expect(lines(selectBranches(t, { A: true, B: true }))).toEqual(['x', 'a', 'ab', 'y']);
    expect(lines(selectBranches(t, { A: false, B: false }))).toEqual(['x', 'na', 'y']);
  });

  it('every declared flag needs a value, and only declared flags are accepted', () => {
    expect(() => selectBranches(t, { A: true })).toThrow(/no value for \/\/#param B/);
    expect(() => selectBranches(t, { A: true, B: true, C: true })).toThrow(/flag C is not a \/\/#param of the template \(params: A, B\)/);
    expect(() => selectBranches('//#if C\n//#endif', {})).toThrow(/line 1: C is not a declared \/\/#param/);
    expect(() => selectBranches('//#param A\n//#param A', { A: true })).toThrow(/declared twice/);
  });

  it('unbalanced or unknown directives are errors', () => {
    expect(() => selectBranches('//#param A\n//#if A\nx', { A: true })).toThrow(/the \/\/#if of line 2 has no \/\/#endif/);
    expect(() => selectBranches('//#endif', {})).toThrow(/line 1: \/\/#endif without an open \/\/#if/);
    expect(() => selectBranches('//#param A\n//#if A\n//#else\n//#else\n//#endif', { A: true })).toThrow(/line 4: \/\/#else without an open/);
    expect(() => selectBranches('//#elif A', {})).toThrow(/unknown directive \/\/#elif/);
    expect(() => selectBranches('//#param A\n//#if A || B\n//#endif', { A: true })).toThrow(/cannot read the condition 'A \|\| B'/);
  });
});

describe('inlineStages', () => {
  const t = [
    '//#inline',
    'fn load(dst: u32, n: u32) {',
    '  for (var u = 0u; u < n; u++) { dst[u] = src[u]; }',
    '  note(dst);',
    '}',
    '//#inline',
    'fn note(x: u32) {',
    '  seen = x;',
    '}',
    'fn main() {',
    '  load(buf, 4u); // before the loop',
    '  if (c) {',
    '    load(other, NVL);',
    '  }',
    '}',
  ].join('\n');

  it('pastes a stage at each call with its arguments, at the call\'s indentation, stages inside stages too', () => {
    expect(inlineStages(t).split('\n')).toEqual([
      'fn main() {',
      '  for (var u = 0u; u < 4u; u++) { buf[u] = src[u]; }',
      '  seen = buf;',
      '  if (c) {',
      '    for (var u = 0u; u < NVL; u++) { other[u] = src[u]; }',
      '    seen = other;',
      '  }',
      '}',
    ]);
  });

  it('a wrong argument count, a stage used in an expression, or recursion is an error', () => {
    expect(() => inlineStages(t.replace('load(buf, 4u);', 'load(buf);'))).toThrow(/load\(\) takes 2 argument\(s\) \(dst, n\), got 1/);
    expect(() => inlineStages(t.replace('load(buf, 4u);', 'let z = load(buf, 4u);'))).toThrow(/used other than as a statement of its own/);
    expect(() => inlineStages('//#inline\nfn f() {\n  f();\n}\nf();')).toThrow(/nest more than 8 deep/);
    expect(() => inlineStages('//#inline\nfn f() {\n  x;\n')).toThrow(/has no closing '}'/);
    expect(() => inlineStages('//#inline\nvar x: u32;')).toThrow(/must be followed by 'fn name\(params\) \{'/);
  });
});

describe('unroll', () => {
  it('copies the body once per value with the counter as a literal, nested loops and named bounds', () => {
    const out = unroll('for (var i = 0u; i < RPT; i++) { for (var j = 0u; j < CPT / 4u; j++) { s[i][j] = 0.0; } }', { RPT: 2, 'CPT / 4u': 2 });
    expect(out).toBe('{ { s[0u][0u] = 0.0; } { s[0u][1u] = 0.0; } } { { s[1u][0u] = 0.0; } { s[1u][1u] = 0.0; } }');
  });

  it('leaves other loops alone; a bound of 0 removes the loop; the counter is replaced as a whole word only', () => {
    expect(unroll('for (var i = 0u; i < hd; i++) { x += i; }', { RPT: 4 })).toBe('for (var i = 0u; i < hd; i++) { x += i; }');
    expect(unroll('a; for (var j4 = 0u; j4 < CPT / 4u; j4++) { p[j4] = 1; } b;', { 'CPT / 4u': 0 })).toBe('a;  b;');
    expect(unroll('for (var i = 0u; i < N; i++) { xi[i] = i; }', { N: 1 })).toBe('{ xi[0u] = 0u; }');
  });
});

describe('the forward template', () => {
  it('declares its flags at the top and runs through with every combination the variants use', () => {
    const params = [...source.matchAll(/^\/\/#param (\w+)/gm)].map((m) => m[1]);
    expect(params).toEqual(['SUBGROUPS', 'VEC4', 'Q_GLOBAL', 'Q_TILE', 'PADDED', 'P_VEC4', 'XATTN', 'MODS', 'F16', 'F16_NATIVE']);
    expect(source.search(/^\/\/#param/m)).toBeLessThan(source.search(/^\/\/#if/m));
    const flags = Object.fromEntries(params.map((p) => [p, false]));
    expect(preprocess(source, { flags })).not.toMatch(/^\s*\/\/#/m);
    expect(() => preprocess(source, { flags: { ...flags, FMA_S: true } })).toThrow(/FMA_S is not a \/\/#param/);
  });
});
