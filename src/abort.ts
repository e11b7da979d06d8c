// AbortSignal helper shared by the paths: a call's promise rejects with an AbortedError
// (code ERR_ABORTED, cause: the signal's reason) as soon as the signal fires, while the
// work already started (a kernel on a worker, a GPU submit) finishes in the background
// and is discarded.
import { abortError } from './errors.js';

export function rejectOnAbort<T>(result: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return result;
  if (signal.aborted) {
    result.catch(() => undefined); // the work's own outcome is dropped, never unhandled
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    result.then(
      (x) => { signal.removeEventListener('abort', onAbort); resolve(x); },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e); },
    );
  });
}
