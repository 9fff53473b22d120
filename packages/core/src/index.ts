export * from "./gen/flame/v1/frontend_pb.js";
export * from "./gen/flame/v1/types_pb.js";
