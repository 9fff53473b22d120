import { create, type DescMessage, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { inputError } from "../errors.js";

/**
 * Flame's limit on one request message: tonic's default decoding limit,
 * which Flame does not change. A bigger request is refused with
 * OUT_OF_RANGE "decoded message length too large".
 */
export const flameMaxRequestBytes = 4 * 1024 * 1024;

// Tags, lengths and numbers of a request besides its bytes and strings: a
// generous bound (a field costs at most 1 tag byte and a 5-byte length).
const framing = 128;

/**
 * An upper bound of a request's encoded size from its byte fields and
 * strings (a UTF-16 unit is at most 3 UTF-8 bytes), for requests with a
 * handful of fields.
 */
export function roughSize(bytes: number, ...strings: string[]): number {
  let size = bytes + framing;
  for (const s of strings) size += 3 * s.length;
  return size;
}

/**
 * Refuses, before anything is sent, a request the server would refuse for
 * its size: FlameError kind "invalid-input" naming the limit. The request is
 * encoded (an extra encoding) only when `rough`, an upper bound of its size,
 * is over the limit, so ordinary requests cost nothing.
 */
export function checkRequestSize<Desc extends DescMessage>(
  method: string,
  limit: number,
  schema: Desc,
  init: MessageInitShape<Desc>,
  rough = Number.POSITIVE_INFINITY,
): void {
  if (rough <= limit) return;
  const size = toBinary(schema, create(schema, init)).byteLength;
  if (size <= limit) return;
  throw inputError(
    `the request is ${size} bytes, over the limit of ${limit} bytes` +
      (limit === flameMaxRequestBytes ? " (Flame's 4 MiB)" : "") +
      "; ConnectionOptions.maxRequestBytes sets the limit",
    method,
  );
}
