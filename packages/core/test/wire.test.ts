// Proves the wire contract on bytes, not only on names: each message is
// encoded by the generated code and compared with bytes worked out by hand
// from the field numbers and types in the Flame wire contract.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CreateTaskRequestSchema } from "../src/gen/flame/v1/frontend_pb.js";
import {
  ResourceRequirementSchema,
  SessionSpecSchema,
  TaskSchema,
  TaskState,
} from "../src/gen/flame/v1/types_pb.js";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

describe("wire contract", () => {
  it("encodes a Task with input bytes and events", () => {
    const task = create(TaskSchema, {
      metadata: { id: "7", name: "" },
      spec: { sessionId: "s", input: new Uint8Array([1, 2]) },
      status: {
        state: TaskState.Failed,
        creationTime: 1000n,
        events: [{ code: 3, message: "x", creationTime: 2n }],
      },
    });
    const expected = [
      // metadata (1, LEN) { id (1, LEN) "7" }
      "0a03",
      "0a0137",
      // spec (2, LEN) { session_id (2, LEN) "s", input (3, LEN) 01 02 }
      "1207",
      "120173",
      "1a020102",
      // status (3, LEN)
      "1a0e",
      // state (1, VARINT) 3; creation_time (2, VARINT) 1000 = e8 07
      "0803",
      "10e807",
      // events (4, LEN) { code (1) 3, message (2) "x", creation_time (3) 2 }
      "2207",
      "0803",
      "120178",
      "1802",
    ].join("");
    expect(hex(toBinary(TaskSchema, task))).toBe(expected);
  });

  it("encodes a SessionSpec without optional fields: absent, not zero", () => {
    const spec = create(SessionSpecSchema, { application: "pi", batchSize: 1 });
    // application (2, LEN) "pi"; batch_size (7, VARINT) 1. No common_data (4),
    // no max_instances (6), no resreq (9).
    expect(hex(toBinary(SessionSpecSchema, spec))).toBe("1202706938" + "01");
  });

  it("encodes a SessionSpec with every optional field present, zeros included", () => {
    const spec = create(SessionSpecSchema, {
      application: "pi",
      commonData: new Uint8Array([]),
      minInstances: 1,
      maxInstances: 0,
      batchSize: 1,
      priority: 2,
      resreq: create(ResourceRequirementSchema, { cpu: 4n, memory: 1024n, gpu: 1 }),
    });
    const expected = [
      "12027069", // application (2) "pi"
      "2200", // common_data (4, LEN) empty but present
      "2801", // min_instances (5) 1
      "3000", // max_instances (6) 0 but present
      "3801", // batch_size (7) 1
      "4002", // priority (8) 2
      // resreq (9, LEN) { cpu (1) 4, memory (2) 1024 = 80 08, gpu (3) 1 }
      "4a07",
      "0804",
      "108008",
      "1801",
    ].join("");
    const bytes = toBinary(SessionSpecSchema, spec);
    expect(hex(bytes)).toBe(expected);
    const back = fromBinary(SessionSpecSchema, bytes);
    expect(back.maxInstances).toBe(0);
    expect(back.commonData).toEqual(new Uint8Array([]));
  });

  it("encodes a CreateTaskRequest", () => {
    const request = create(CreateTaskRequestSchema, {
      task: { sessionId: "pi-1", input: new TextEncoder().encode("{}") },
    });
    // task (1, LEN) { session_id (2) "pi-1", input (3) "{}" }
    expect(hex(toBinary(CreateTaskRequestSchema, request))).toBe(
      "0a0a" + "1204" + "70692d31" + "1a027b7d",
    );
  });

  it("keeps field 3 of SessionSpec reserved", async () => {
    // An unknown field 3 (the old `slots`) is carried as unknown, never as a known field.
    const withSlots = Uint8Array.from(Buffer.from("120270691805", "hex"));
    const spec = fromBinary(SessionSpecSchema, withSlots);
    expect(spec.application).toBe("pi");
    expect(Object.keys(spec)).not.toContain("slots");
  });
});
