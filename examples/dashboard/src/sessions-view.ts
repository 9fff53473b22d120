import { type Session, SessionState } from "@flame-ts/web";
import { h, replace } from "./dom.js";

/** The sessions table; a click on a row opens that session. */
export function renderSessions(
  container: Element,
  sessions: readonly Session[],
  selectedId: string | undefined,
  onSelect: (session: Session) => void,
): void {
  const rows = [...sessions]
    .sort((a, b) => b.creationTime.getTime() - a.creationTime.getTime())
    .map((s) =>
      h(
        "tr",
        {
          "data-testid": "session-row",
          "data-id": s.id,
          "data-succeed": s.succeed,
          class: s.id === selectedId ? "selected clickable" : "clickable",
          onclick: () => onSelect(s),
        },
        h("td", {}, h("code", {}, s.id)),
        h("td", {}, s.application),
        h("td", {}, SessionState[s.state] ?? String(s.state)),
        h("td", { class: "num" }, s.pending),
        h("td", { class: "num" }, s.running),
        h("td", { class: "num" }, s.succeed),
        h("td", { class: "num" }, s.failed),
      ),
    );
  replace(
    container,
    sessions.length === 0
      ? h("p", { class: "muted" }, "No sessions yet.")
      : h(
          "table",
          {},
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ...["id", "application", "state", "pending", "running", "succeed", "failed"].map(
                (t) => h("th", {}, t),
              ),
            ),
          ),
          h("tbody", {}, ...rows),
        ),
  );
}
