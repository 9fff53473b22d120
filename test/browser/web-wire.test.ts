// What connect-web in Chromium puts on the wire, seen by a server that
// records it: a per-call deadline travels as grpc-timeout, and the call
// ends at the server when it passes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ClientPage, openClientPage, until } from "./harness.js";
import { type RecordingFrontend, startRecordingFrontend } from "./recording-frontend.js";

let client: ClientPage;
let server: RecordingFrontend;

beforeAll(async () => {
  client = await openClientPage();
  server = await startRecordingFrontend();
});

afterAll(async () => {
  await client?.close();
  await server?.close();
});

describe("connect-web from Chromium", () => {
  it("sends a per-call deadline as grpc-timeout and ends the call at the server when it passes", async () => {
    const result = await client.call("tryListApplications", server.url, 400);
    expect(result).toMatchObject({ error: { isFlameError: true, kind: "deadline-exceeded" } });
    expect(server.calls).toHaveLength(1);
    const [seen] = server.calls;
    expect(seen?.grpcTimeout).toMatch(/^\d+m$/);
    expect(Number.parseInt(seen?.grpcTimeout ?? "", 10)).toBeLessThanOrEqual(400);
    await until(() => seen?.aborted === true, "the server to see the call end");
  });

  it("sends no grpc-timeout for the connection's default deadline", async () => {
    const before = server.calls.length;
    const pending = client.call("tryListApplications", server.url);
    await until(() => server.calls.length > before, "the call to reach the server");
    expect(server.calls[before]?.grpcTimeout).toBeNull();
    // The page closes nothing here; end the waiting call from the server side.
    await server.close();
    server = await startRecordingFrontend();
    expect(await pending).toMatchObject({ error: { isFlameError: true } });
  });
});
