// Our Frontend client (createFrontendClient) must behave as connect's
// createClient does for unary and server-streaming methods; a Connect router
// transport plays the server.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Frontend, TaskSchema } from "../src/generated.js";
import { createFrontendClient } from "../src/internal/frontend-client.js";

const task = (id: string) => create(TaskSchema, { metadata: { id }, spec: { sessionId: "s" } });

describe("createFrontendClient", () => {
  it("unary: returns the message and hands over response headers and trailers", async () => {
    const client = createFrontendClient(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getTask(req, ctx) {
            ctx.responseHeader.set("x-h", "head");
            ctx.responseTrailer.set("x-t", "tail");
            expect(ctx.requestHeader.get("x-call")).toBe("yes");
            return task(`${req.sessionId}/${req.taskId}`);
          },
        }),
      ),
    );
    const seen: string[] = [];
    const got = await client.getTask(
      { sessionId: "s", taskId: "7" },
      {
        headers: { "x-call": "yes" },
        onHeader: (h) => seen.push(`header ${h.get("x-h")}`),
        onTrailer: (t) => seen.push(`trailer ${t.get("x-t")}`),
      },
    );
    expect(got.metadata?.id).toBe("s/7");
    expect(seen).toEqual(["header head", "trailer tail"]);
  });

  it("unary: a server error comes out as the ConnectError it was", async () => {
    const client = createFrontendClient(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          getSession() {
            throw new ConnectError("no such session", Code.NotFound);
          },
        }),
      ),
    );
    const err = await client.getSession({ sessionId: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.NotFound);
    expect((err as ConnectError).rawMessage).toBe("no such session");
  });

  it("server streaming: the request goes out at the call; messages in order between header and trailer", async () => {
    let requested = false;
    const client = createFrontendClient(
      createRouterTransport(({ service }) =>
        service(Frontend, {
          async *listTask(req, ctx) {
            requested = true;
            ctx.responseHeader.set("x-h", "head");
            ctx.responseTrailer.set("x-t", "tail");
            for (const id of ["1", "2", "3"]) yield task(`${req.sessionId}/${id}`);
          },
        }),
      ),
    );
    const seen: string[] = [];
    const stream = client.listTask(
      { sessionId: "s" },
      {
        onHeader: (h) => seen.push(`header ${h.get("x-h")}`),
        onTrailer: (t) => seen.push(`trailer ${t.get("x-t")}`),
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    // Nothing iterated yet: the call alone sent the request.
    expect(requested).toBe(true);
    for await (const t of stream) seen.push(t.metadata?.id ?? "?");
    expect(seen).toEqual(["header head", "s/1", "s/2", "s/3", "trailer tail"]);
  });

  it("every Frontend method is there", () => {
    const client = createFrontendClient(createRouterTransport(() => {}));
    for (const method of Frontend.methods) {
      expect(typeof (client as unknown as Record<string, unknown>)[method.localName]).toBe(
        "function",
      );
    }
    expect(Frontend.methods).toHaveLength(18);
  });
});
