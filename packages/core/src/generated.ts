// Everything protoc-gen-es generated from proto/flame/v1, published as the
// "@flame-ts/core/gen" subpath. The top-level entry point wraps these in
// friendlier types and re-exports only the enums and the service.
export * from "./gen/flame/v1/frontend_pb.js";
export * from "./gen/flame/v1/types_pb.js";
