import { inputError } from "./errors.js";

/** Turns values into task bytes and back. */
export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

/** The codecs of a session: one for task input, one for task output. */
export interface TaskCodec<In, Out> {
  input: Codec<In>;
  output: Codec<Out>;
}

const identity: Codec<Uint8Array> = {
  encode: (value) => value,
  decode: (bytes) => bytes,
};

// One encoder/decoder for the process: codecs sit on the hot path of bulk runs.
// Marked pure so that a bundle that uses none of these codecs drops them.
const encoder = /* @__PURE__ */ new TextEncoder();
const decoder = /* @__PURE__ */ new TextDecoder("utf-8", { fatal: true });

const utf8: Codec<string> = {
  encode: (value) => encoder.encode(value),
  decode: (bytes) => {
    try {
      return decoder.decode(bytes);
    } catch (cause) {
      throw Object.assign(inputError("task bytes are not valid UTF-8"), { cause });
    }
  },
};

function jsonCodec<T>(): Codec<T> {
  return {
    encode: (value) => {
      const text = JSON.stringify(value);
      if (text === undefined) throw inputError("value cannot be encoded as JSON");
      return encoder.encode(text);
    },
    decode: (bytes) => {
      try {
        return JSON.parse(decoder.decode(bytes)) as T;
      } catch (cause) {
        throw Object.assign(inputError("task bytes are not valid JSON"), { cause });
      }
    },
  };
}

/** @internal The default codecs (`codecs.bytes`), without the others. */
export const bytesCodec: TaskCodec<Uint8Array, Uint8Array> = { input: identity, output: identity };
const stringPair: TaskCodec<string, string> = { input: utf8, output: utf8 };
const jsonPair: TaskCodec<unknown, unknown> = {
  input: /* @__PURE__ */ jsonCodec(),
  output: /* @__PURE__ */ jsonCodec(),
};

/**
 * Ready-made codecs. `bytes` is the default (flame-rs passes `Bytes`);
 * `string` is UTF-8; `json<In, Out>()` is JSON text in UTF-8 (what flmping
 * and most Python services speak).
 */
export const codecs = {
  bytes: bytesCodec,
  string: stringPair,
  json<In = unknown, Out = unknown>(): TaskCodec<In, Out> {
    return jsonPair as TaskCodec<In, Out>;
  },
} as const;
