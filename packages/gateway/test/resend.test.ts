import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { clientFor, type Protocol } from "./clients.js";
import { gatewayToFakeFlame } from "./gateway-fixture.js";
import { rejection } from "./rejection.js";

const env = gatewayToFakeFlame();
let tokens = 0;
const refuse = (how: string) => ({ "x-refuse": `${how}:${++tokens}` });

describe.each<Protocol>(["grpc", "grpc-web"])(
  "calls the upstream refused before processing them, clients over %s",
  (protocol) => {
    const client = () => clientFor(protocol, env.gateway.url);
    /** A call first, so the refused stream is not the first on its upstream connection. */
    const warmUp = () => client().getApplication({ name: "flmping" });

    it("a unary call whose upstream connection got GOAWAY below its stream is answered", async () => {
      await warmUp();
      const streams = env.flame.http2Streams;
      const app = await client().getApplication(
        { name: "flmping" },
        { headers: refuse("goaway-unprocessed") },
      );
      expect(app.metadata?.name).toBe("flmping");
      // Sent twice: once on the connection that went away, once on a fresh one.
      expect(env.flame.http2Streams - streams).toBe(2);
    });

    it("a unary call refused with REFUSED_STREAM is answered", async () => {
      const streams = env.flame.http2Streams;
      const app = await client().getApplication(
        { name: "flmping" },
        { headers: refuse("refused-stream") },
      );
      expect(app.metadata?.name).toBe("flmping");
      expect(env.flame.http2Streams - streams).toBe(2);
    });

    it("a server stream whose connection got GOAWAY below it gets all its messages", async () => {
      await warmUp();
      const ids: string[] = [];
      for await (const task of client().listTask(
        { sessionId: "s" },
        { headers: refuse("goaway-unprocessed") },
      )) {
        ids.push(task.metadata?.id ?? "");
      }
      expect(ids).toEqual(["1", "2", "3"]);
    });

    it("a call the upstream may have processed is not sent again", async () => {
      const streams = env.flame.http2Streams;
      const err = await rejection(
        client().getApplication({ name: "flmping" }, { headers: refuse("goaway-processed") }),
      );
      expect(err.code).toBe(Code.Unavailable);
      expect(env.flame.http2Streams - streams).toBe(1);
      // The next call opens a fresh connection.
      expect((await client().getApplication({ name: "flmping" })).metadata?.name).toBe("flmping");
    });
  },
);
