// The WGSL template preprocessor: turns a shaders/*.wgsl template into the text of one
// program. Directives are WGSL line comments, so a template reads (and highlights) as WGSL:
//   const NAME: u32 = 64u;         a constant the host rewrites (`consts`)
//   //#param NAME  what it means   a boolean compile-time flag, declared at the top
//   //#if A && !B … //#else … //#endif   keep the branch the flags select (nested)
//   //#inline + `fn name(a: u32) { … }`  a stage of a kernel, pasted at each statement
//                                  `name(x);` with its parameters replaced by the arguments
// and then loops over the register-tile sizes are unrolled (`unroll`).
// Inline stages read their caller's locals and leave no call behind: drivers keep values in
// registers across them, and Tint's range analysis (which does not look through calls) still
// proves the workgroup indices in bounds. Unrolled loops index register arrays by constants
// only, which drivers keep in registers (a dynamically indexed private array can land in
// local memory).
// see: onnxruntime contrib_ops/webgpu (#param / #if WGSL templates)

export interface PreprocessOptions {
  /** Values of `const NAME: u32 = …u;` lines; each named constant must occur exactly once. */
  consts?: Record<string, number>;
  /** A value for every `//#param` the template declares, and no other. */
  flags?: Record<string, boolean>;
  /** Loop bounds to unroll (see unroll()). */
  unroll?: Record<string, number>;
}

/** The program text of a template: constants, then branches, then inline stages, then unrolling. */
export function preprocess(source: string, options: PreprocessOptions = {}): string {
  let text = setConsts(source, options.consts ?? {});
  text = selectBranches(text, options.flags ?? {});
  text = inlineStages(text);
  return options.unroll ? unroll(text, options.unroll) : text;
}

/** Rewrites `const NAME: u32 = <n>u;` at the start of a line for each given name. */
export function setConsts(source: string, consts: Record<string, number>): string {
  let text = source;
  for (const [name, value] of Object.entries(consts)) {
    if (!Number.isInteger(value) || value < 0) throw new Error(`preprocess: const ${name} must be a u32 (got ${value})`);
    const line = new RegExp(`^const ${name}: u32 = \\d+u;`, 'gm');
    const found = text.match(line)?.length ?? 0;
    if (found !== 1) throw new Error(`preprocess: const ${name} must be declared once as 'const ${name}: u32 = <n>u;' (found ${found})`);
    text = text.replace(line, `const ${name}: u32 = ${value}u;`);
  }
  return text;
}

/**
 * Keeps the lines whose enclosing //#if conditions hold; drops every //#param, //#if, //#else
 * and //#endif line. A condition is terms joined by `&&`, each a declared flag or its
 * negation `!FLAG`. Unknown flags, missing or extra flag values, and unbalanced directives
 * are errors.
 */
export function selectBranches(source: string, flags: Record<string, boolean>): string {
  const lines = source.split('\n');
  const declared = new Set<string>();
  for (const line of lines) {
    const m = /^\/\/#param\s+(\w+)/.exec(line);
    if (m) {
      if (declared.has(m[1])) throw new Error(`preprocess: //#param ${m[1]} is declared twice`);
      declared.add(m[1]);
    }
  }
  for (const name of declared) {
    if (typeof flags[name] !== 'boolean') throw new Error(`preprocess: no value for //#param ${name}`);
  }
  for (const name of Object.keys(flags)) {
    if (!declared.has(name)) throw new Error(`preprocess: flag ${name} is not a //#param of the template (params: ${[...declared].join(', ') || 'none'})`);
  }
  const out: string[] = [];
  const stack: { taken: boolean; inElse: boolean; line: number }[] = [];
  lines.forEach((line, n) => {
    const directive = /^\s*\/\/#(\w+)\s*(.*)$/.exec(line);
    if (!directive) {
      if (stack.every((s) => s.taken)) out.push(line);
      return;
    }
    const [, word, rest] = directive;
    if (word === 'param') return;
    if (word === 'if') {
      stack.push({ taken: evaluate(rest, flags, declared, n + 1), inElse: false, line: n + 1 });
    } else if (word === 'else') {
      const top = stack[stack.length - 1];
      if (!top || top.inElse) throw new Error(`preprocess: line ${n + 1}: //#else without an open //#if`);
      top.taken = !top.taken;
      top.inElse = true;
    } else if (word === 'endif') {
      if (!stack.pop()) throw new Error(`preprocess: line ${n + 1}: //#endif without an open //#if`);
    } else if (word === 'inline') {
      if (stack.every((s) => s.taken)) out.push(line); // for inlineStages()
    } else {
      throw new Error(`preprocess: line ${n + 1}: unknown directive //#${word}`);
    }
  });
  if (stack.length) throw new Error(`preprocess: the //#if of line ${stack[stack.length - 1].line} has no //#endif`);
  return out.join('\n');
}

function evaluate(condition: string, flags: Record<string, boolean>, declared: Set<string>, line: number): boolean {
  const terms = condition.replace(/\s*\/\/.*$/, '').split('&&').map((t) => t.trim());
  return terms.every((term) => {
    const m = /^(!?)(\w+)$/.exec(term);
    if (!m) throw new Error(`preprocess: line ${line}: cannot read the condition '${condition.trim()}' (terms FLAG or !FLAG joined by &&)`);
    if (!declared.has(m[2])) throw new Error(`preprocess: line ${line}: ${m[2]} is not a declared //#param`);
    return (m[1] === '!') !== flags[m[2]];
  });
}

interface Stage {
  params: string[];
  body: string[];
}

/**
 * Pastes every `//#inline` function at its calls and removes its definition. A call is a
 * statement on its own line, `name(arg, …);` (an optional line comment after it); each
 * parameter name in the body is replaced by its argument's text, so arguments should be
 * names or literals (an expression would be evaluated once per use). The body keeps its own
 * declarations: it is not wrapped in a block. Stages may call stages.
 */
export function inlineStages(source: string): string {
  const lines = source.split('\n');
  const stages = new Map<string, Stage>();
  const rest: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!/^\s*\/\/#inline\s*$/.test(lines[i])) {
      rest.push(lines[i]);
      continue;
    }
    const header = /^fn (\w+)\(([^)]*)\)\s*\{\s*$/.exec(lines[i + 1] ?? '');
    if (!header) throw new Error(`preprocess: line ${i + 2}: //#inline must be followed by 'fn name(params) {' on one line`);
    const [, name, paramList] = header;
    if (stages.has(name)) throw new Error(`preprocess: inline fn ${name} is defined twice`);
    const end = lines.findIndex((l, j) => j > i + 1 && l === '}');
    if (end < 0) throw new Error(`preprocess: inline fn ${name} has no closing '}' at the start of a line`);
    const params = paramList.split(',').map((p) => p.trim()).filter(Boolean).map((p) => {
      const m = /^(\w+)\s*:/.exec(p);
      if (!m) throw new Error(`preprocess: inline fn ${name}: cannot read the parameter '${p}'`);
      return m[1];
    });
    stages.set(name, { params, body: lines.slice(i + 2, end) });
    i = end;
  }
  if (!stages.size) return source;
  const call = new RegExp(`^(\\s*)(${[...stages.keys()].join('|')})\\((.*)\\);\\s*(//.*)?$`);
  const expand = (input: string[], depth: number): string[] => {
    if (depth > 8) throw new Error('preprocess: inline fns nest more than 8 deep (recursion?)');
    return input.flatMap((line) => {
      const m = call.exec(line);
      if (!m) return [line];
      const [, indent, name, argList] = m;
      const stage = stages.get(name)!;
      const args = argList.trim() ? splitArgs(argList) : [];
      if (args.length !== stage.params.length) {
        throw new Error(`preprocess: ${name}() takes ${stage.params.length} argument(s) (${stage.params.join(', ')}), got ${args.length}: '${line.trim()}'`);
      }
      const body = stage.body.map((l) => {
        let out = l;
        stage.params.forEach((p, k) => { out = out.replace(new RegExp(`\\b${p}\\b`, 'g'), args[k]); });
        return out.length ? indent + out.replace(/^ {2}/, '') : out;
      });
      return expand(body, depth + 1);
    });
  };
  const out = expand(rest, 0);
  const leftover = out.findIndex((l) => new RegExp(`\\b(${[...stages.keys()].join('|')})\\(`).test(l.replace(/\/\/.*$/, '')));
  if (leftover >= 0) throw new Error(`preprocess: an inline fn is used other than as a statement of its own: '${out[leftover].trim()}'`);
  return out.join('\n');
}

/** Splits a call's argument list at its top-level commas. */
function splitArgs(list: string): string[] {
  const args: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of list) {
    if (ch === '(' || ch === '[') depth++;
    if (ch === ')' || ch === ']') depth--;
    if (ch === ',' && depth === 0) {
      args.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  args.push(cur.trim());
  return args;
}

/**
 * Fully unrolls every `for (var x = 0u; x < N; x++) { … }` whose bound N is a key of
 * `bounds` (spelled as in the source: 'RPT', 'DPT / 4u'): each copy gets x as a literal in
 * its own block, `{ … }`; a bound of 0 removes the loop.
 */
export function unroll(text: string, bounds: Record<string, number>): string {
  const names = Object.keys(bounds).map((b) => b.replace(/[/ ]/g, (c) => (c === '/' ? '\\/' : ' ')));
  if (!names.length) return text;
  const header = new RegExp(`for \\(var (\\w+) = 0u; \\1 < (${names.join('|')}); \\1\\+\\+\\) \\{`);
  for (let m = header.exec(text); m; m = header.exec(text)) {
    const open = m.index + m[0].length - 1;
    let depth = 0;
    let close = -1;
    for (let i = open; i < text.length; i++) {
      if (text[i] === '{') depth++;
      else if (text[i] === '}' && --depth === 0) {
        close = i;
        break;
      }
    }
    if (close < 0) throw new Error(`preprocess: unroll: the loop '${m[0]}' has no closing brace`);
    const body = text.slice(open + 1, close);
    const n = bounds[m[2]];
    if (!Number.isInteger(n) || n < 0) throw new Error(`preprocess: unroll bound ${m[2]} must be a non-negative integer (got ${n})`);
    const v = new RegExp(`\\b${m[1]}\\b`, 'g');
    const copies = Array.from({ length: n }, (_, k) => `{${body.replace(v, `${k}u`)}}`);
    text = text.slice(0, m.index) + copies.join(' ') + text.slice(close + 1);
  }
  return text;
}
