// The gateway in front of the Flame emulator serving gRPC only, as real
// Flame does, with the core client on the other side speaking gRPC-Web or
// Connect: everything that works here went through the gateway.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { Connection, FlameError, Frontend, TaskState } from "@flame-ts/core";
import { type Emulator, startEmulator } from "@flame-ts/emulator";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Gateway, startGateway } from "../src/index.js";
import { transportFor } from "./clients.js";
import { eventually } from "./fake-flame.js";

let emulator: Emulator;
let gateway: Gateway;
let readOnly: Gateway;
let releaseHeld: () => void = () => {};

beforeAll(async () => {
  emulator = await startEmulator({
    port: 0,
    protocols: { grpc: true, grpcWeb: false, connect: false },
    applications: { echo: {}, hold: {} },
  });
  emulator.serve("echo", ({ input }) => `echo:${new TextDecoder().decode(input)}`);
  const held = new Promise<void>((resolve) => {
    releaseHeld = resolve;
  });
  emulator.serve("hold", () => held.then(() => "released"));
  gateway = await startGateway({ upstream: emulator.url });
  readOnly = await startGateway({ upstream: emulator.url, methods: "read-only" });
});

afterAll(async () => {
  releaseHeld();
  await gateway?.close();
  await readOnly?.close();
  await emulator?.close();
});

describe.each(["grpc-web", "connect"] as const)(
  "core client over %s through the gateway",
  (protocol) => {
    it("cannot reach the gRPC-only emulator directly", async () => {
      const direct = createClient(Frontend, transportFor(protocol, emulator.url));
      const err = await direct.listApplication({}).catch((e: unknown) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
    });

    it("lists applications and runs tasks", async () => {
      const connection = new Connection(transportFor(protocol, gateway.url));
      try {
        const names = (await connection.listApplications()).map((a) => a.name);
        expect(names).toEqual(expect.arrayContaining(["flmping", "echo"]));
        const session = await connection.createSession({ application: "echo" });
        const result = await session.run(new TextEncoder().encode("hi"));
        expect(result.state).toBe(TaskState.Succeed);
        expect(new TextDecoder().decode(result.output)).toBe("echo:hi");
        await session.close();
      } finally {
        await connection.close();
      }
    });

    it("cancels the emulator's watch stream when the subscriber unsubscribes", async () => {
      const connection = new Connection(transportFor(protocol, gateway.url));
      try {
        const session = await connection.createSession({ application: "hold" });
        const task = await session.createTask();
        const cancelledBefore = emulator.stats().streamsCancelled;
        const startedBefore = emulator.stats().streamsStarted;
        const seen: TaskState[] = [];
        const subscription = session.watchTask(task.id).subscribe((t) => seen.push(t.state));
        await eventually(
          () => seen.length > 0 && emulator.stats().streamsStarted > startedBefore,
          "the current state, and the watch to reach the emulator",
        );
        expect(seen[0]).not.toBe(TaskState.Succeed);
        subscription.unsubscribe();
        await eventually(
          () => emulator.stats().streamsCancelled > cancelledBefore,
          "the emulator to see the watch cancelled",
        );
        await eventually(() => gateway.stats().openStreams === 0, "the gateway to drop the stream");
      } finally {
        await connection.close();
      }
    });

    it("turns a gateway refusal into a permission-denied FlameError, and the emulator never sees it", async () => {
      const connection = new Connection(transportFor(protocol, readOnly.url), { retry: false });
      try {
        expect((await connection.listApplications()).length).toBeGreaterThan(0);
        const before = emulator.stats().calls.CreateSession ?? 0;
        const err = await connection
          .createSession({ application: "echo" })
          .catch((e: unknown) => e);
        expect(FlameError.is(err)).toBe(true);
        expect((err as FlameError).kind).toBe("permission-denied");
        expect((err as FlameError).code).toBe(Code.PermissionDenied);
        expect(emulator.stats().calls.CreateSession ?? 0).toBe(before);
      } finally {
        await connection.close();
      }
    });

    it("keeps NOT_FOUND from the emulator", async () => {
      const connection = new Connection(transportFor(protocol, gateway.url), { retry: false });
      try {
        const err = await connection.getApplication("no-such-app").catch((e: unknown) => e);
        expect((err as FlameError).kind).toBe("not-found");
      } finally {
        await connection.close();
      }
    });
  },
);
