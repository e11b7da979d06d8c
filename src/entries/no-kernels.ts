// Build-time stand-in for kernels.generated.ts in entries that embed no kernels
// (dist/core.js, dist/workerd.js): kernels come from provideKernels() / init().
export const KERNEL_BASE64: Record<string, string> = {};
