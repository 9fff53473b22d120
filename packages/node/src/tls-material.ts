import { readFile } from "node:fs/promises";
import { configError, osErrorText } from "./config-error.js";

/** Where TLS material comes from: a PEM file path, or the PEM text itself. */
export interface TlsMaterialOptions {
  /** Path to a PEM file of CA certificates that replaces the default trust store. */
  caFile?: string;
  /** PEM text of CA certificates that replaces the default trust store. */
  ca?: string | Uint8Array;
  /** Path to a PEM client certificate chain, for mutual TLS (needs a key). */
  certFile?: string;
  /** PEM client certificate chain, for mutual TLS (needs a key). */
  cert?: string | Uint8Array;
  /** Path to the PEM private key of the client certificate. */
  keyFile?: string;
  /** PEM private key of the client certificate. */
  key?: string | Uint8Array;
}

/** TLS material read and checked, ready for `http2.connect()`. */
export interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
}

/**
 * Read the CA, certificate and key named in `options`. Each file is read once,
 * here, so a missing or unreadable file is an `"invalid-config"` error that
 * names the file and the OS error before any call is made. File contents never
 * appear in errors: a key file must not leak into logs.
 */
export async function loadTlsMaterial(options: TlsMaterialOptions): Promise<TlsMaterial> {
  const ca = await pick("CA", options.ca, options.caFile, "CERTIFICATE");
  const cert = await pick("client certificate", options.cert, options.certFile, "CERTIFICATE");
  const key = await pick("client key", options.key, options.keyFile, "PRIVATE KEY");
  if ((cert === undefined) !== (key === undefined)) {
    throw configError(
      "Mutual TLS needs both a client certificate and its key: " +
        `got only the ${cert === undefined ? "key" : "certificate"}`,
    );
  }
  const material: TlsMaterial = {};
  if (ca !== undefined) material.ca = ca;
  if (cert !== undefined) material.cert = cert;
  if (key !== undefined) material.key = key;
  return material;
}

async function pick(
  what: string,
  inline: string | Uint8Array | undefined,
  file: string | undefined,
  pemLabel: string,
): Promise<string | undefined> {
  if (inline !== undefined && file !== undefined) {
    throw configError(`Give the ${what} either as PEM text or as a file, not both`);
  }
  if (inline !== undefined) {
    const text = typeof inline === "string" ? inline : new TextDecoder().decode(inline);
    if (!text.includes(pemLabel)) {
      throw configError(
        `The ${what} given in the options is not PEM text (no "${pemLabel}" block)`,
      );
    }
    return text;
  }
  if (file === undefined || file === "") return undefined;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw configError(`Cannot read the ${what} file "${file}": ${osErrorText(err)}`, err);
  }
  if (!text.includes(pemLabel)) {
    throw configError(`The ${what} file "${file}" is not a PEM file (no "${pemLabel}" block)`);
  }
  return text;
}
