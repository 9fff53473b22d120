import { configError } from "./config-error.js";

/** A Flame endpoint URL that passed validation. */
export interface FlameEndpoint {
  /** The URL as the transport will use it, without a trailing slash. */
  readonly baseUrl: string;
  /** True for `https://`: the connection uses TLS. */
  readonly tls: boolean;
  /** Host name or IP address, without brackets for IPv6. */
  readonly host: string;
}

/**
 * Check that `url` names a Flame session manager we can reach over gRPC:
 * `http://host[:port]` (plaintext HTTP/2) or `https://host[:port]` (TLS).
 *
 * Throws `FlameError` of kind `"invalid-config"` naming the URL otherwise, so
 * a typo fails at once instead of at the first call.
 */
export function parseEndpoint(url: string): FlameEndpoint {
  if (typeof url !== "string" || url.trim() === "") {
    throw configError(
      "Flame endpoint is empty: expected a URL such as http://127.0.0.1:8080 or https://flame.example.com:8080",
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw configError(
      `Flame endpoint "${url}" is not a valid URL: expected http://host:port or https://host:port`,
    );
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw configError(
      `Flame endpoint "${url}" uses the unsupported scheme "${parsed.protocol.replace(/:$/, "")}": ` +
        "use http:// (plaintext) or https:// (TLS)",
    );
  }
  if (parsed.hostname === "") {
    throw configError(`Flame endpoint "${url}" has no host`);
  }
  if (parsed.username !== "" || parsed.password !== "") {
    // Credentials in the URL would never be sent by gRPC; refuse rather than
    // pretend they are used.
    throw configError(`Flame endpoint "${redact(parsed)}" must not contain user credentials`);
  }
  if (parsed.search !== "" || parsed.hash !== "") {
    throw configError(`Flame endpoint "${url}" must not have a query or fragment`);
  }
  const baseUrl = `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, "")}`;
  return {
    baseUrl,
    tls: parsed.protocol === "https:",
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
  };
}

function redact(url: URL): string {
  const copy = new URL(url.href);
  copy.username = "***";
  copy.password = "";
  return copy.href;
}
