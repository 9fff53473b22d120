/**
 * One signal that aborts when any of `signals` does, with the first
 * reason. `dispose` removes the listeners (call it when the work is done,
 * or a long-lived signal keeps every call's controller alive).
 */
export function linkSignals(signals: ReadonlyArray<AbortSignal | undefined>): {
  signal: AbortSignal | undefined;
  dispose: () => void;
} {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length === 0) return { signal: undefined, dispose: noop };
  if (present.length === 1) return { signal: present[0], dispose: noop };
  const controller = new AbortController();
  const onAbort = function (this: AbortSignal) {
    controller.abort(this.reason);
    dispose();
  };
  const dispose = () => {
    for (const s of present) s.removeEventListener("abort", onAbort);
  };
  for (const s of present) {
    if (s.aborted) {
      controller.abort(s.reason);
      dispose();
      break;
    }
    s.addEventListener("abort", onAbort);
  }
  return { signal: controller.signal, dispose };
}

function noop() {}
