import { describe, expect, test } from "vitest";
import { parseEndpoint } from "../src/endpoint.js";
import { configError } from "./helpers/yaml-files.js";

describe("parseEndpoint", () => {
  test("accepts http and https URLs and normalises them", () => {
    expect(parseEndpoint("http://127.0.0.1:8080")).toEqual({
      baseUrl: "http://127.0.0.1:8080",
      tls: false,
      host: "127.0.0.1",
    });
    expect(parseEndpoint(" https://flame.example.com:8443/ ")).toEqual({
      baseUrl: "https://flame.example.com:8443",
      tls: true,
      host: "flame.example.com",
    });
    expect(parseEndpoint("http://[::1]:8080").host).toBe("::1");
  });

  test.each([
    ["ftp://flame:8080", /unsupported scheme "ftp".*http:\/\/.*https:\/\//],
    ["grpc://flame:8080", /unsupported scheme "grpc"/],
    ["not a url", /"not a url" is not a valid URL/],
    ["127.0.0.1:8080", /unsupported scheme|not a valid URL/],
    ["", /empty/],
    ["http://flame:8080/?x=1", /query or fragment/],
  ])("rejects %j", (url, message) => {
    const err = configError(() => parseEndpoint(url));
    expect(err.message).toMatch(message);
  });

  test("names the URL but never the password in it", () => {
    const err = configError(() => parseEndpoint("https://admin:s3cret@flame:8080"));
    expect(err.message).toMatch(/must not contain user credentials/);
    expect(err.message).not.toContain("s3cret");
  });
});
