// Error helpers: every message names the op, the argument, the value received and what
// was expected, e.g. "SparseAttention: localAttnCtx must be a positive integer for mode
// 'local' (got 0)".

const OP = 'SparseAttention';

/** Renders a received value for an error message, short and unambiguous. */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'function') return 'a function';
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as ArrayLike<number>).length})`;
  if (Array.isArray(value)) {
    const text = JSON.stringify(value);
    return text.length <= 60 ? text : `an array of length ${value.length}`;
  }
  const name = (value as object).constructor?.name;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

export function argError(arg: string, expectation: string, got: unknown): Error {
  return new Error(`${OP}: ${arg} must be ${expectation} (got ${describe(got)})`);
}

export function stateError(message: string): Error {
  return new Error(`${OP}: ${message}`);
}

export function isPositiveInt(x: unknown): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x > 0;
}

export function checkPositiveInt(arg: string, x: unknown, context = ''): number {
  if (!isPositiveInt(x)) throw argError(arg, `a positive integer${context}`, x);
  return x;
}
