import { cors } from "@connectrpc/connect";
import type { CorsOrigins } from "./options.js";

// Any port on the loopback names a dev server (Vite, webpack...) might use.
const LOCALHOST = /^https?:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/;

export const originAllowed = (origin: string, allowed: CorsOrigins): boolean => {
  if (allowed === "localhost") return LOCALHOST.test(origin);
  return allowed.some((entry) =>
    typeof entry === "string" ? entry === "*" || entry === origin : entry.test(origin),
  );
};

const allowMethods = cors.allowedMethods.join(", ");
const allowHeaders = [...cors.allowedHeaders, "Authorization"].join(", ");
const exposeHeaders = cors.exposedHeaders.join(", ");

type Headers = Record<string, string>;

/**
 * CORS headers for a request from `origin`; undefined when the origin gets
 * no grant (the browser then blocks the response itself).
 */
export const corsHeaders = (
  origin: string | undefined,
  allowed: CorsOrigins,
  preflight: boolean,
  requestedHeaders?: string,
): Headers | undefined => {
  if (!origin || !originAllowed(origin, allowed)) return undefined;
  const headers: Headers = {
    "access-control-allow-origin": origin,
    vary: "Origin",
  };
  if (preflight) {
    headers["access-control-allow-methods"] = allowMethods;
    // Also grant what the page asks for: a dev server should not trip over a custom header.
    headers["access-control-allow-headers"] = requestedHeaders
      ? `${allowHeaders}, ${requestedHeaders}`
      : allowHeaders;
    headers["access-control-max-age"] = "7200";
  } else {
    headers["access-control-expose-headers"] = exposeHeaders;
  }
  return headers;
};
