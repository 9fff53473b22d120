import { type Application, ApplicationState, Shim } from "@flame-ts/web";
import { h, replace } from "./dom.js";

/** The applications table. */
export function renderApplications(container: Element, apps: readonly Application[]): void {
  const rows = apps.map((app) =>
    h(
      "tr",
      { "data-testid": "application-row", "data-name": app.name },
      h("td", {}, h("strong", {}, app.name)),
      h("td", {}, ApplicationState[app.state] ?? String(app.state)),
      h("td", {}, Shim[app.shim] ?? String(app.shim)),
      h("td", { class: "muted clip", title: app.description ?? "" }, app.description ?? ""),
    ),
  );
  replace(
    container,
    h(
      "table",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", {}, "name"),
          h("th", {}, "state"),
          h("th", {}, "shim"),
          h("th", {}, "description"),
        ),
      ),
      h("tbody", {}, ...rows),
    ),
  );
}
