import { ConnectError } from "@connectrpc/connect";

/** The error a call failed with, as a ConnectError; throws if the call succeeded. */
export async function rejection(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("expected the call to fail");
}
