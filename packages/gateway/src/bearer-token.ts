import { createHash, timingSafeEqual } from "node:crypto";

/**
 * Checks `Authorization: Bearer <token>` against the configured token in
 * constant time. Both sides are hashed first so that neither the comparison
 * time nor an early length mismatch tells an attacker anything about the
 * token. The token itself is kept only as its digest.
 */
export class BearerTokenCheck {
  readonly #digest: Buffer;

  constructor(token: string) {
    if (token.length === 0) throw new TypeError("bearerToken must not be empty");
    this.#digest = digest(token);
  }

  /** True when the Authorization header carries the right token. */
  accepts(authorization: string | null): boolean {
    const presented = parseBearer(authorization);
    // Compare even when nothing was presented, so both paths cost the same.
    const same = timingSafeEqual(digest(presented ?? ""), this.#digest);
    return presented !== undefined && same;
  }
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

function parseBearer(authorization: string | null): string | undefined {
  if (authorization === null) return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  return match?.[1];
}
