// Which backend runs a call, and why: the facade's decision as one pure function over the
// backend list, so that adding a backend adds a list entry and no branch here.
// A forced backend runs unless it became unusable (then the CPU, saying so); 'auto' ranks
// every usable backend that can run the call by the cost model's estimate on its own plan,
// where a backend not initialised yet offers its kind's best case (a GPU is asked for only
// when that wins).
import type { BackendName } from './config.js';
import { UnsupportedError } from './errors.js';
import type { Plan } from './plan.js';
import type { Backend } from './backends/backend.js';

export interface Choice {
  backend: Backend;
  /** The call planned on that backend's block geometry. */
  plan: Plan;
  reason: string;
  /** The choice rests on a best case: the backend must initialise (find a device) first. */
  probe?: boolean;
}

export interface ChoiceContext {
  /** Backends in order of preference on equal estimates (the CPU first). */
  backends: readonly Backend[];
  forced: BackendName;
  /** Why a backend is not to be used (device lost, failed to initialise…); null when usable. */
  usable(b: Backend): string | null;
  /** The call planned on a backend's own block geometry. */
  planOn(b: Backend): Plan;
  /** How many of q, k, v and out are copied (resident tensors are not). */
  copied: number;
}

export function choose({ backends, forced, usable, planOn, copied }: ChoiceContext): Choice {
  if (forced !== 'auto') {
    const b = backends.find((x) => x.id === forced)!;
    const why = usable(b);
    if (!why) return { backend: b, plan: planOn(b), reason: `${b.id}: forced by options.backend = '${b.id}'` };
    const other = backends.find((x) => x !== b && !usable(x));
    if (!other) throw new UnsupportedError(`backend '${b.id}' was requested but ${why}, and no other backend can run this call`);
    return { backend: other, plan: planOn(other), reason: `${other.id}: ${b.id} was requested but ${why}; the device is not retried` };
  }
  const skipped: string[] = [];
  const ranked: { b: Backend; plan: Plan; ms: number; text: string; bestCase: boolean }[] = [];
  for (const b of backends) {
    const why = usable(b);
    if (why) {
      skipped.push(`${b.id}: ${why}`);
      continue;
    }
    const plan = planOn(b);
    // a storage type the backend lacks: skipped without initialising it (no device is asked for)
    const noDtype = b.dtypeUnsupported?.(plan.dtype);
    if (noDtype) {
      skipped.push(`${b.id}: ${noDtype}`);
      continue;
    }
    const est = b.estimate(plan, copied);
    // An initialised backend that cannot run this call (head dim past its workgroup memory,
    // a layout past its binding limit) is skipped; one not initialised yet is asked after init.
    const cannot = est.bestCase ? null : b.canRun(plan);
    if (cannot) {
      skipped.push(`${b.id}: ${cannot}`);
      continue;
    }
    ranked.push({ b, plan, ...est });
  }
  if (!ranked.length) throw new UnsupportedError(`no backend can run this call (${skipped.join('; ')})`);
  ranked.sort((x, y) => x.ms - y.ms); // stable: ties keep the list's order
  const [best, ...rest] = ranked;
  const others = rest.map((r) => r.text).join('; ');
  if (best.bestCase) {
    return { backend: best.b, plan: best.plan, probe: true, reason: `${best.b.id} if it initialises: ${best.text} < ${others}` };
  }
  const notUsed = skipped.length ? `; not used: ${skipped.join('; ')}` : '';
  return { backend: best.b, plan: best.plan, reason: `${best.b.id}: ${best.text}${rest.length ? ` <= ${others}` : ''}${notUsed}` };
}
