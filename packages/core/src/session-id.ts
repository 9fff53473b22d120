const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Length of the random part, as Flame's SDKs make it. */
const suffixLength = 6;

// 248 is the largest multiple of 62 below 256: bytes under it map to the
// alphabet without bias; the others are drawn again.
const unbiasedBelow = 248;

/**
 * A session id as Flame's SDKs (flame-rs, flamepy, flmctl) make one when none
 * is given: `<application>-<6 random [A-Za-z0-9]>`, from
 * `crypto.getRandomValues`.
 */
export function generateSessionId(application: string): string {
  let suffix = "";
  while (suffix.length < suffixLength) {
    const bytes = globalThis.crypto.getRandomValues(new Uint8Array(suffixLength * 2));
    for (let i = 0; i < bytes.length && suffix.length < suffixLength; i++) {
      const b = bytes[i] as number;
      if (b < unbiasedBelow) suffix += alphabet[b % alphabet.length];
    }
  }
  return `${application}-${suffix}`;
}
