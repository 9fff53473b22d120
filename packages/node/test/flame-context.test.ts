import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { defaultFlameContextPath, loadFlameContext } from "../src/flame-context.js";
import { configError, yamlFiles } from "./helpers/yaml-files.js";

const { dir, file } = yamlFiles("ctx");

const twoContexts = `
current-context: staging
contexts:
  - name: local
    cluster:
      endpoint: "http://127.0.0.1:8080"
  - name: staging
    workspace: team-a
    cluster:
      endpoint: "https://flame.staging.example:8080"
      tls:
        ca_file: "/etc/flame/certs/ca.crt"
        cert_file: certs/client.crt
        key_file: "~/keys/client.key"
    cache:
      endpoint: "grpcs://flame-cache:9090"
      tls:
        ca_file: /etc/flame/certs/ca.crt
    package:
      storage: "file:///opt/flame/packages"
      excludes: ["*.log", "*.pkl"]
    runner:
      template: python
      extra: { a: 1 }
`;

describe("loadFlameContext", () => {
  test("reads current-context with cluster, tls, cache, package and runner", () => {
    const path = file(twoContexts);
    const ctx = loadFlameContext({ path, env: { HOME: "/home/u" } });
    expect(ctx).toEqual({
      name: "staging",
      endpoint: "https://flame.staging.example:8080",
      caFile: "/etc/flame/certs/ca.crt",
      certFile: join(dir, "certs/client.crt"),
      keyFile: "/home/u/keys/client.key",
      workspace: "team-a",
      cache: { endpoint: "grpcs://flame-cache:9090", tls: { ca_file: "/etc/flame/certs/ca.crt" } },
      package: { storage: "file:///opt/flame/packages", excludes: ["*.log", "*.pkl"] },
      runner: { template: "python", extra: { a: 1 } },
      path,
    });
  });

  test("a context name picks another context", () => {
    const ctx = loadFlameContext({ path: file(twoContexts), contextName: "local", env: {} });
    expect(ctx.name).toBe("local");
    expect(ctx.endpoint).toBe("http://127.0.0.1:8080");
    expect(ctx.caFile).toBeUndefined();
    expect(ctx.cache).toBeUndefined();
  });

  test("FLAME_ENDPOINT and FLAME_CA_FILE override the file", () => {
    const ctx = loadFlameContext({
      path: file(twoContexts),
      env: { FLAME_ENDPOINT: "https://other:9443", FLAME_CA_FILE: "/tmp/other-ca.pem" },
    });
    expect(ctx.name).toBe("staging");
    expect(ctx.endpoint).toBe("https://other:9443");
    expect(ctx.caFile).toBe("/tmp/other-ca.pem");
    expect(ctx.certFile).toBe(join(dir, "certs/client.crt"));
  });

  test("FLAME_WORKSPACE and FLAME_CACHE_ENDPOINT override too", () => {
    const ctx = loadFlameContext({
      path: file(twoContexts),
      env: { FLAME_WORKSPACE: "team-b", FLAME_CACHE_ENDPOINT: "grpc://other-cache:9090" },
    });
    expect(ctx.workspace).toBe("team-b");
    expect(ctx.cache).toEqual({
      endpoint: "grpc://other-cache:9090",
      tls: { ca_file: "/etc/flame/certs/ca.crt" },
    });
    const local = loadFlameContext({
      path: file(twoContexts),
      contextName: "local",
      env: { FLAME_CACHE_ENDPOINT: "grpc://c:1" },
    });
    expect(local.cache).toEqual({ endpoint: "grpc://c:1" });
  });

  test("reads $HOME/.flame/flame.yaml by default", () => {
    const home = join(dir, "home-default");
    mkdirSync(join(home, ".flame"), { recursive: true });
    writeFileSync(
      join(home, ".flame", "flame.yaml"),
      "current-context: flame\ncontexts:\n  - name: flame\n    cluster:\n      endpoint: http://10.0.0.1:8080\n",
    );
    expect(defaultFlameContextPath({ HOME: home })).toBe(join(home, ".flame", "flame.yaml"));
    const ctx = loadFlameContext({ env: { HOME: home } });
    expect(ctx).toMatchObject({ name: "flame", endpoint: "http://10.0.0.1:8080" });
    expect(ctx.path).toBe(join(home, ".flame", "flame.yaml"));
  });

  test("with FLAME_ENDPOINT and no file, works from the environment alone", () => {
    const ctx = loadFlameContext({
      env: { HOME: join(dir, "nobody"), FLAME_ENDPOINT: "http://h:1", FLAME_CA_FILE: "/ca.pem" },
    });
    expect(ctx).toEqual({ name: "env", endpoint: "http://h:1", caFile: "/ca.pem" });
  });

  test("a single context needs no current-context", () => {
    const ctx = loadFlameContext({
      path: file("contexts:\n  - name: only\n    cluster:\n      endpoint: http://a:1\n"),
      env: {},
    });
    expect(ctx.name).toBe("only");
  });

  test("missing file: names the path and says how to fix it", () => {
    const path = join(dir, "missing", "flame.yaml");
    const err = configError(() => loadFlameContext({ path, env: {} }));
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/does not exist. Create it .* or pass another path/);
  });

  test("missing default file without FLAME_ENDPOINT is an error naming it", () => {
    const home = join(dir, "empty-home");
    const err = configError(() => loadFlameContext({ env: { HOME: home } }));
    expect(err.message).toContain(join(home, ".flame", "flame.yaml"));
    expect(err.message).toContain("or set FLAME_ENDPOINT");
  });

  test("bad YAML: names the file and the line", () => {
    const path = file(
      "current-context: flame\ncontexts:\n  - name: flame\n    cluster: [unclosed\n",
    );
    const err = configError(() => loadFlameContext({ path, env: {} }));
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/not valid YAML/);
    expect(err.message).toMatch(/line \d+, column \d+/);
  });

  test("duplicate keys are bad YAML too", () => {
    const path = file("current-context: a\ncurrent-context: b\ncontexts: []\n");
    expect(configError(() => loadFlameContext({ path, env: {} })).message).toMatch(
      /unique.*line 2/,
    );
  });

  test("unknown context: names it and lists the known ones", () => {
    const path = file(twoContexts.replace("current-context: staging", "current-context: prod"));
    const err = configError(() => loadFlameContext({ path, env: {} }));
    expect(err.message).toContain('"prod"');
    expect(err.message).toContain(path);
    expect(err.message).toContain("known contexts: local, staging");
    const byName = configError(() =>
      loadFlameContext({ path: file(twoContexts), contextName: "nope", env: {} }),
    );
    expect(byName.message).toContain('"nope"');
  });

  test("missing endpoint is an error unless FLAME_ENDPOINT gives one", () => {
    const path = file("current-context: a\ncontexts:\n  - name: a\n    cluster: {}\n");
    const err = configError(() => loadFlameContext({ path, env: {} }));
    expect(err.message).toMatch(/"a".*no cluster\.endpoint/);
    expect(err.message).toContain(path);
    expect(loadFlameContext({ path, env: { FLAME_ENDPOINT: "http://x:1" } }).endpoint).toBe(
      "http://x:1",
    );
  });

  test.each([
    ["[1, 2]", /must be a mapping/],
    ["current-context: a\n", /no contexts/],
    ["contexts:\n  - cluster: {}\n", /contexts\[0\] needs a "name"/],
    [
      "contexts:\n  - name: a\n    cluster:\n      endpoint: 8080\n",
      /cluster\.endpoint must be a string/,
    ],
    [
      "contexts:\n  - name: a\n    cluster:\n      endpoint: http://a:1\n    cache: yes\n",
      /cache must be a mapping/,
    ],
    [
      "current-context: a\ncontexts:\n  - name: a\n    cluster: {endpoint: http://a:1}\n  - name: b\n    cluster: {endpoint: http://b:1}\n---\nx: 1\n",
      /2 YAML documents/,
    ],
    [
      "contexts:\n  - name: a\n    cluster: {endpoint: http://a:1}\n  - name: b\n    cluster: {endpoint: http://b:1}\n",
      /no current-context and has 2 contexts \(a, b\)/,
    ],
  ])("shape errors name the file and the field: %j", (text, message) => {
    const path = file(text);
    const err = configError(() => loadFlameContext({ path, env: {} }));
    expect(err.message).toMatch(message);
    expect(err.message).toContain(path);
  });
});
