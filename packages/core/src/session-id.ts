const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

/**
 * A session id as flame-rs makes one when none is given:
 * `<application>-<8 random [a-z0-9]>`, from `crypto.getRandomValues`.
 */
export function generateSessionId(application: string): string {
  const bytes = new Uint8Array(8);
  globalThis.crypto.getRandomValues(bytes);
  let suffix = "";
  // 252 is the largest multiple of 36 below 256: no bias.
  for (let i = 0; i < bytes.length; i++) {
    let b = bytes[i] as number;
    while (b >= 252) b = globalThis.crypto.getRandomValues(new Uint8Array(1))[0] as number;
    suffix += alphabet[b % 36];
  }
  return `${application}-${suffix}`;
}
