import * as net from "node:net";
import * as tls from "node:tls";

const connectTimeoutMs = 10_000;

/**
 * A socket to the upstream for a connection the gateway speaks HTTP/2 on
 * itself (the relays): TCP for `http://`, TLS with ALPN h2 and the given CA
 * for `https://`. Nagle is off: every write is a whole batch of frames.
 */
export function connectUpstreamSocket(url: URL, ca: string | undefined): Promise<net.Socket> {
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const secure = url.protocol === "https:";
  const port = Number(url.port || (secure ? 443 : 80));
  return new Promise((resolve, reject) => {
    const socket = secure
      ? tls.connect({
          host,
          port,
          servername: net.isIP(host) === 0 ? host : undefined,
          ALPNProtocols: ["h2"],
          ...(ca === undefined ? {} : { ca }),
        } as tls.ConnectionOptions)
      : net.connect({ host, port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => fail(new Error("connect timed out")), connectTimeoutMs);
    const fail = (e: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    };
    socket.once("error", fail);
    socket.once(secure ? "secureConnect" : "connect", () => {
      clearTimeout(timer);
      socket.off("error", fail);
      if (secure && (socket as tls.TLSSocket).alpnProtocol !== "h2") {
        fail(new Error("the upstream did not agree to HTTP/2 (ALPN h2)"));
        return;
      }
      resolve(socket);
    });
  });
}
