import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { configError } from "./config-error.js";
import { isMapping, readYamlDocuments, yamlType } from "./yaml-file.js";

/** The `cache:` section of a context: Flame's object cache. Unknown keys are kept. */
export interface FlameCacheConfig {
  /** Cache endpoint, e.g. `grpc://127.0.0.1:9090`. */
  endpoint?: string;
  /** Local storage path of the cache. */
  storage?: string;
  /** TLS for the cache (file keys as written: `ca_file`, `cert_file`, `key_file`). */
  tls?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The `package:` section of a context: where application packages are stored. */
export interface FlamePackageConfig {
  /** Storage URL, e.g. `file:///opt/flame/packages`. */
  storage?: string;
  /** Glob patterns left out of packages. */
  excludes?: string[];
  [key: string]: unknown;
}

/** The `runner:` section of a context, kept as written. */
export interface FlameRunnerConfig {
  [key: string]: unknown;
}

/**
 * One resolved Flame context: where the cluster is and how to reach it, with
 * the `FLAME_*` environment overrides already applied.
 */
export interface FlameContext {
  /** The context's name (`"env"` when built from `FLAME_ENDPOINT` alone). */
  name: string;
  /** Session manager URL (`cluster.endpoint`), e.g. `https://flame:8080`. */
  endpoint: string;
  /** CA file for TLS (`cluster.tls.ca_file`), resolved to an absolute path. */
  caFile?: string;
  /** Client certificate for mutual TLS (`cluster.tls.cert_file`). */
  certFile?: string;
  /** Client key for mutual TLS (`cluster.tls.key_file`). */
  keyFile?: string;
  /** Workspace (`workspace`), when the file sets one. */
  workspace?: string;
  /** The `cache:` section, as written. */
  cache?: FlameCacheConfig;
  /** The `package:` section, as written. */
  package?: FlamePackageConfig;
  /** The `runner:` section, as written. */
  runner?: FlameRunnerConfig;
  /** The file the context came from; absent when built from the environment only. */
  path?: string;
}

/** Options of {@link loadFlameContext}. */
export interface LoadFlameContextOptions {
  /** The context file (default `$HOME/.flame/flame.yaml`). */
  path?: string;
  /** The context to use instead of the file's `current-context`. */
  contextName?: string;
  /** Environment to read `HOME` and `FLAME_*` from (default `process.env`). */
  env?: Record<string, string | undefined>;
}

/** The default context file: `$HOME/.flame/flame.yaml`. */
export function defaultFlameContextPath(
  env: Record<string, string | undefined> = process.env,
): string {
  return join(nonEmpty(env.HOME) ?? homedir(), ".flame", "flame.yaml");
}

/**
 * Load a Flame context the way flame-rs and flmctl do: read
 * `~/.flame/flame.yaml` (or `options.path`), pick `current-context` (or
 * `options.contextName`), then let the environment override it —
 * `FLAME_ENDPOINT` replaces the endpoint, `FLAME_CA_FILE`, `FLAME_CERT_FILE`
 * and `FLAME_KEY_FILE` replace the TLS files, `FLAME_WORKSPACE` the
 * workspace and `FLAME_CACHE_ENDPOINT` the cache endpoint (as in flame-rs,
 * except that flame-rs only fills the TLS files in when the file has none).
 *
 * With `FLAME_ENDPOINT` set and no file at the default path (and no path or
 * context name asked for), the context comes from the environment alone.
 *
 * Relative file paths in the file are resolved against the file's directory;
 * `~/` is expanded.
 *
 * Synchronous: the file is small and read once at start-up.
 *
 * @throws FlameError of kind `"invalid-config"` for a missing file, bad YAML
 *   (with line and column), an unknown context (listing the known ones), a
 *   missing endpoint or a field of the wrong type; every message names the file.
 */
export function loadFlameContext(options: LoadFlameContextOptions = {}): FlameContext {
  const env = options.env ?? process.env;
  const envEndpoint = nonEmpty(env.FLAME_ENDPOINT);
  const path = options.path ?? defaultFlameContextPath(env);

  if (
    options.path === undefined &&
    options.contextName === undefined &&
    envEndpoint !== undefined
  ) {
    if (!existsSync(path)) {
      return applyEnv({ name: "env", endpoint: envEndpoint }, env, process.cwd());
    }
  }
  if (!existsSync(path)) {
    const create =
      "Create it (current-context and contexts[].cluster.endpoint, as flmctl reads it)";
    const advice =
      options.path === undefined && options.contextName === undefined
        ? `${create}, or set FLAME_ENDPOINT=http://host:8080`
        : `${create} or pass another path (FLAME_ENDPOINT alone is used only when no path or context name is given)`;
    throw configError(`Flame context file "${path}" does not exist. ${advice}`);
  }

  const docs = readYamlDocuments(path, "Flame context file");
  if (docs.length > 1) {
    throw configError(
      `Flame context file "${path}" holds ${docs.length} YAML documents; expected one`,
    );
  }
  const root = docs[0];
  if (!isMapping(root)) {
    throw configError(
      `Flame context file "${path}" must be a mapping with current-context and contexts, not ${yamlType(root)}`,
    );
  }
  const contexts = root.contexts;
  if (!Array.isArray(contexts) || contexts.length === 0) {
    throw configError(
      `Flame context file "${path}" has no contexts: expected a list under "contexts:"` +
        (contexts === undefined ? "" : `, found ${yamlType(contexts)}`),
    );
  }
  const names: string[] = contexts.map((entry, i) => {
    if (!isMapping(entry) || typeof entry.name !== "string" || entry.name === "") {
      throw configError(`Flame context file "${path}": contexts[${i}] needs a "name" string`);
    }
    return entry.name;
  });

  const current = root["current-context"];
  if (current !== undefined && current !== null && typeof current !== "string") {
    throw configError(
      `Flame context file "${path}": current-context must be a string, not ${yamlType(current)}`,
    );
  }
  let wanted = options.contextName ?? (current || undefined);
  if (wanted === undefined) {
    if (names.length !== 1) {
      throw configError(
        `Flame context file "${path}" sets no current-context and has ${names.length} contexts ` +
          `(${names.join(", ")}): set current-context or pick one by name`,
      );
    }
    wanted = names[0] as string;
  }
  const index = names.indexOf(wanted);
  if (index < 0) {
    throw configError(
      `Flame context "${wanted}" is not in "${path}"; known contexts: ${names.join(", ")}`,
    );
  }
  const entry = contexts[index] as Record<string, unknown>;
  const baseDir = dirname(resolve(path));
  const field = `contexts[${index}] ("${wanted}")`;

  const cluster = entry.cluster;
  if (cluster !== undefined && !isMapping(cluster)) {
    throw configError(
      `Flame context file "${path}": ${field}.cluster must be a mapping, not ${yamlType(cluster)}`,
    );
  }
  const endpoint = optionalString(cluster?.endpoint, path, `${field}.cluster.endpoint`);
  if (endpoint === undefined && envEndpoint === undefined) {
    throw configError(
      `Flame context "${wanted}" in "${path}" has no cluster.endpoint (and FLAME_ENDPOINT is not set)`,
    );
  }
  const tls = cluster?.tls;
  if (tls !== undefined && tls !== null && !isMapping(tls)) {
    throw configError(
      `Flame context file "${path}": ${field}.cluster.tls must be a mapping, not ${yamlType(tls)}`,
    );
  }
  const context: FlameContext = {
    name: wanted,
    endpoint: (endpoint ?? envEndpoint) as string,
    path,
  };
  const caFile = optionalString(tls?.ca_file, path, `${field}.cluster.tls.ca_file`);
  const certFile = optionalString(tls?.cert_file, path, `${field}.cluster.tls.cert_file`);
  const keyFile = optionalString(tls?.key_file, path, `${field}.cluster.tls.key_file`);
  if (caFile !== undefined) context.caFile = resolveFile(caFile, baseDir, env);
  if (certFile !== undefined) context.certFile = resolveFile(certFile, baseDir, env);
  if (keyFile !== undefined) context.keyFile = resolveFile(keyFile, baseDir, env);

  const workspace = optionalString(entry.workspace, path, `${field}.workspace`);
  if (workspace !== undefined) context.workspace = workspace;
  for (const section of ["cache", "package", "runner"] as const) {
    const value = entry[section];
    if (value === undefined || value === null) continue;
    if (!isMapping(value)) {
      throw configError(
        `Flame context file "${path}": ${field}.${section} must be a mapping, not ${yamlType(value)}`,
      );
    }
    context[section] = value;
  }
  return applyEnv(context, env, process.cwd());
}

function applyEnv(
  context: FlameContext,
  env: Record<string, string | undefined>,
  cwd: string,
): FlameContext {
  const endpoint = nonEmpty(env.FLAME_ENDPOINT);
  if (endpoint !== undefined) context.endpoint = endpoint;
  const workspace = nonEmpty(env.FLAME_WORKSPACE);
  if (workspace !== undefined) context.workspace = workspace;
  const cacheEndpoint = nonEmpty(env.FLAME_CACHE_ENDPOINT);
  if (cacheEndpoint !== undefined) context.cache = { ...context.cache, endpoint: cacheEndpoint };
  const files = [
    ["FLAME_CA_FILE", "caFile"],
    ["FLAME_CERT_FILE", "certFile"],
    ["FLAME_KEY_FILE", "keyFile"],
  ] as const;
  for (const [name, key] of files) {
    const value = nonEmpty(env[name]);
    if (value !== undefined) context[key] = resolveFile(value, cwd, env);
  }
  return context;
}

function optionalString(value: unknown, path: string, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") {
    throw configError(
      `Flame context file "${path}": ${field} must be a string, not ${yamlType(value)}`,
    );
  }
  return value === "" ? undefined : value;
}

function resolveFile(
  file: string,
  baseDir: string,
  env: Record<string, string | undefined>,
): string {
  if (file === "~" || file.startsWith("~/")) {
    return join(nonEmpty(env.HOME) ?? homedir(), file.slice(1));
  }
  return isAbsolute(file) ? file : resolve(baseDir, file);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
