// Browser tests drive Debian's Chromium; no browser is ever downloaded.
// Installs it with apt-get when it is missing and we are root, and otherwise
// says exactly what to install.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

const chromium = "/usr/bin/chromium";

if (!existsSync(chromium)) {
  const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
  if (!isRoot) {
    console.error(
      `Browser tests need Debian's Chromium at ${chromium}. Install it with:\n` +
        "  sudo apt-get update && sudo apt-get install -y chromium",
    );
    process.exit(1);
  }
  console.log(`${chromium} is missing: installing Debian's chromium package`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
  execFileSync("apt-get", ["install", "-y", "-qq", "chromium"], { stdio: "inherit", env });
}
