import { createContextKey } from "@connectrpc/connect";

/**
 * Calls whose `contextValues` carry the same object here belong together:
 * a transport with several connections keeps them on one, so the server
 * sees them in the order they were sent. A watch sends WatchTask, then
 * GetTask for the current state; on two connections the GetTask could be
 * answered (and the watch cancelled) before the server saw the WatchTask.
 */
export const connectionAffinity = createContextKey<object | undefined>(undefined, {
  description: "flame: keep these calls on one connection",
});
