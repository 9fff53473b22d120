import { Code, ConnectError } from "@connectrpc/connect";

// Flame maps its internal errors onto four gRPC codes only; these helpers
// name them after Flame's error kinds so each call site says which one it is.
export const notFound = (message: string) => new ConnectError(message, Code.NotFound);
export const alreadyExists = (message: string) => new ConnectError(message, Code.AlreadyExists);
export const invalidConfig = (message: string) => new ConnectError(message, Code.InvalidArgument);
export const invalidState = (message: string) => new ConnectError(message, Code.InvalidArgument);
export const internal = (message: string) => new ConnectError(message, Code.Internal);

export const errorMessage = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);
