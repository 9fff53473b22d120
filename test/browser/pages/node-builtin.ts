// A control for the bundling test: a page that reaches for a Node built-in
// must fail the browser build rather than be quietly stubbed out.
import { readFileSync } from "node:fs";

document.body.textContent = String(typeof readFileSync);
