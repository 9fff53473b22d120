import { Connection, type ConnectionOptions } from "@flame-ts/core";
import {
  type FlameContext,
  type LoadFlameContextOptions,
  loadFlameContext,
} from "./flame-context.js";
import { createNodeTransport, type NodeTransportOptions } from "./node-transport.js";

/**
 * Options of {@link connect}: the core {@link ConnectionOptions} (`timeoutMs`,
 * `logger`, `retry`, `onClose`), TLS material and transport limits, and which
 * Flame context to use when no URL is given.
 */
export interface NodeConnectOptions extends ConnectionOptions, NodeTransportOptions {
  /** Context file to read when no URL is given (default `~/.flame/flame.yaml`). */
  contextFile?: string;
  /** Context to use instead of the file's `current-context`. */
  contextName?: string;
  /** Environment for `HOME` and `FLAME_*` when reading the context (default `process.env`). */
  env?: Record<string, string | undefined>;
}

/**
 * Connect to a Flame session manager over HTTP/2 gRPC — what real Flame
 * speaks — with connect-node's `createGrpcTransport`.
 *
 * - `connect("http://127.0.0.1:8080")`: plaintext HTTP/2 (h2c).
 * - `connect("https://flame:8080", { caFile })`: TLS, trusting the CA in
 *   `caFile` (or `ca`, PEM text) instead of Node's default trust store;
 *   `cert`/`certFile` and `key`/`keyFile` add a client certificate (mTLS).
 * - `connect()`: the current Flame context, see {@link connectWithContext}.
 *   With a URL, neither the context file nor `FLAME_*` variables are read.
 *
 * Async because it reads files; nothing is sent until the first call, but a
 * bad URL or an unreadable CA/cert/key file rejects here with a `FlameError`
 * of kind `"invalid-config"`. `connection.close()` closes the HTTP/2
 * connections (cancelling calls in flight), so the process can exit.
 */
export async function connect(url?: string, options: NodeConnectOptions = {}): Promise<Connection> {
  if (url === undefined) return connectWithContext(undefined, options);
  const { transport, close } = await createNodeTransport(url, transportOptions(options));
  const userOnClose = options.onClose;
  const connectionOptions: ConnectionOptions = { ...coreOptions(options) };
  connectionOptions.onClose = async () => {
    close();
    await userOnClose?.();
  };
  return new Connection(transport, connectionOptions);
}

/**
 * Connect using a Flame context: the given one, or the one
 * {@link loadFlameContext} finds (`options.contextFile`,
 * `options.contextName`, `FLAME_ENDPOINT`, `FLAME_CA_FILE` ...). TLS files in
 * `options` win over the context's.
 */
export async function connectWithContext(
  context?: FlameContext,
  options: NodeConnectOptions = {},
): Promise<Connection> {
  let ctx = context;
  if (ctx === undefined) {
    const load: LoadFlameContextOptions = {};
    if (options.contextFile !== undefined) load.path = options.contextFile;
    if (options.contextName !== undefined) load.contextName = options.contextName;
    if (options.env !== undefined) load.env = options.env;
    ctx = loadFlameContext(load);
  }
  const merged: NodeConnectOptions = { ...options };
  // The context supplies a file only where the caller gave neither file nor PEM.
  if (merged.caFile === undefined && merged.ca === undefined && ctx.caFile !== undefined) {
    merged.caFile = ctx.caFile;
  }
  if (merged.certFile === undefined && merged.cert === undefined && ctx.certFile !== undefined) {
    merged.certFile = ctx.certFile;
  }
  if (merged.keyFile === undefined && merged.key === undefined && ctx.keyFile !== undefined) {
    merged.keyFile = ctx.keyFile;
  }
  return connect(ctx.endpoint, merged);
}

function transportOptions(options: NodeConnectOptions): NodeTransportOptions {
  const { caFile, ca, certFile, cert, keyFile, key, maxMessageBytes, http2, interceptors } =
    options;
  return {
    caFile,
    ca,
    certFile,
    cert,
    keyFile,
    key,
    maxMessageBytes,
    http2,
    interceptors,
  };
}

function coreOptions(options: NodeConnectOptions): ConnectionOptions {
  const {
    caFile: _caFile,
    ca: _ca,
    certFile: _certFile,
    cert: _cert,
    keyFile: _keyFile,
    key: _key,
    maxMessageBytes: _max,
    http2: _http2,
    interceptors: _interceptors,
    contextFile: _contextFile,
    contextName: _contextName,
    env: _env,
    onClose: _onClose,
    ...core
  } = options;
  return core;
}
