export interface PropertyCase {
  seed: number; mode: 'all' | 'local' | 'strided' | 'fixed' | 'custom'; bs: number; causal: boolean;
  batch: number; nCtx: number; heads: number; headDim: number; threads: number; L?: number;
  numVerts?: number; vertsize?: number; layoutKind?: string; density?: number; emptyRows?: boolean;
  tokenMask?: boolean; layoutForm?: 'native' | 'onnx' | 'flex'; maskForm?: 'pairs' | 'blocks'; keyLengths?: number[];
  kvHeads?: number; nQ?: number; cacheChunks?: number[]; rollback?: boolean; seqLengths?: number[];
  /** (makeCase's `mods`) score modifiers and the lse output. */
  softcap?: number; alibi?: 'press' | 'slopes'; sinks?: boolean; scale?: number; lse?: boolean;
}
export interface PathLike { name: string; options: object; sync?: boolean; resident?: boolean; noCache?: boolean; atol: number; rtol: number }
export function rng(seed: number): () => number;
export function makeCase(seed: number, budget: number, options?: { mods?: boolean }): PropertyCase;
export function caseOptions(c: PropertyCase): Record<string, unknown>;
export function describeCase(c: PropertyCase): string;
export function caseInputs(c: PropertyCase): Record<'q' | 'k' | 'v', { data: Float32Array; shape: [number, number, number] }>;
export function firstMismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, atol: number, rtol: number): string | null;
export function residentCopies<T extends { data: Float32Array; shape: readonly number[] }>(
  attn: { createTensor(shape: readonly number[]): T }, shape: readonly number[], sources: readonly ({ data: Float32Array } | null)[],
): T[];
export function randomTensor(shape: [number, number, number], seed: number, scale?: number): { data: Float32Array; shape: [number, number, number] };
export function checkCase(lib: unknown, c: PropertyCase, paths: readonly PathLike[]): Promise<string[]>;
