/**
 * Where the dashboard finds Flame, first match wins:
 * `?flame=http://...` in the page URL, then `VITE_FLAME_URL` at build (or
 * dev-server) time, then the page's own origin (a gateway serving the app).
 */
export function resolveFlameUrl(location: Location, envUrl: string | undefined): string {
  const fromQuery = new URLSearchParams(location.search).get("flame");
  if (fromQuery) return fromQuery;
  if (envUrl) return envUrl;
  return location.origin;
}
