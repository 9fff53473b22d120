import { toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

/** tonic's default decoding limit, which Flame's session manager leaves in force. */
export const FLAME_MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/**
 * Refuses a request message over `max` bytes as tonic does: OUT_OF_RANGE
 * with tonic's words. The size is the message's binary encoding, the bytes a
 * gRPC client sends for it.
 */
export const requestLimit =
  (max: number): Interceptor =>
  (next) =>
  (req) => {
    if (!req.stream) {
      const size = toBinary(req.method.input, req.message).byteLength;
      if (size > max) {
        throw new ConnectError(
          `Error, decoded message length too large: found ${size} bytes, the limit is: ${max} bytes`,
          Code.OutOfRange,
        );
      }
    }
    return next(req);
  };
