import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Flag, FrameType, frame, grpcRequestHead, RawH2Connection, rstStream } from "./h2-wire.js";

/**
 * Whether this Node takes `streamResetBurst`/`streamResetRate` (its budget
 * for a client's RST_STREAM frames). Node 20 ignores them and keeps
 * nghttp2's fixed budget, a burst of 1,000 then 33 a second. Found out by
 * trying: a plain Node server allowed 10 resets is sent 100.
 */
export async function nodeTakesResetBudget(): Promise<boolean> {
  const options = { streamResetBurst: 10, streamResetRate: 1 } as http2.ServerOptions;
  const server = http2.createServer(options, (_req, res) => res.end());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const client = new RawH2Connection(port);
  try {
    await client.ready();
    const block = grpcRequestHead(port, "ListApplication");
    const frames: Buffer[] = [];
    for (let i = 0; i < 100; i++) {
      const id = client.streamId();
      frames.push(
        frame(FrameType.headers, Flag.endHeaders | Flag.endStream, id, block),
        rstStream(id),
      );
    }
    await client.send(Buffer.concat(frames));
    // A PING answered means every frame before it was read.
    const answered = new Promise<void>((resolve) =>
      client.onEachFrame((f) => {
        if (f.type === FrameType.ping || f.type === FrameType.goaway) resolve();
      }),
    );
    client.write(frame(FrameType.ping, 0, 0, Buffer.alloc(8)));
    await Promise.race([answered, client.closed]);
    return client.goaways.length > 0;
  } finally {
    client.destroy();
    server.close();
  }
}
