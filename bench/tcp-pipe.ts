// A hop that does nothing: every byte from a client goes to the upstream and
// back, on a connection of its own. Figure 5 puts it beside the gateway as
// the least any proxy in Node adds on the same path (a child process, like
// the gateway). Usage: tcp-pipe.ts http://upstream:port
import * as net from "node:net";
import { serveAsChild } from "./child-process.js";

const upstream = new URL(process.argv[2] ?? "");
const server = net.createServer({ noDelay: true }, (client) => {
  const target = net.connect({
    host: upstream.hostname,
    port: Number(upstream.port),
    noDelay: true,
  });
  client.pipe(target);
  target.pipe(client);
  const end = () => {
    client.destroy();
    target.destroy();
  };
  for (const socket of [client, target]) {
    socket.on("error", end);
    socket.on("close", end);
  }
});
serveAsChild(server);
