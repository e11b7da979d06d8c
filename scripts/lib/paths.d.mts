import type { PathLike } from './property.mjs';
export function cpuPaths(lib: unknown): PathLike[];
export function gpuPaths(): PathLike[];
