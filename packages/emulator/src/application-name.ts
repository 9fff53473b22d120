const MAX_NAME_BYTES = 253;
const ALLOWED = /^[A-Za-z0-9._-]*$/;

/** Why Flame refuses `name` for an application (in-band, on Register and Update), or undefined. */
export const applicationNameProblem = (name: string): string | undefined => {
  if (name === "") return "application name cannot be empty";
  if (new TextEncoder().encode(name).length > MAX_NAME_BYTES) {
    return `application name exceeds maximum length of ${MAX_NAME_BYTES} characters`;
  }
  if (name.includes("..") || name.includes("/") || name.includes("\\")) {
    return `application name contains invalid characters (path traversal): ${name}`;
  }
  if (name.startsWith(".") || name.startsWith("-")) {
    return `application name cannot start with '.' or '-': ${name}`;
  }
  if (!ALLOWED.test(name)) {
    return `application name contains invalid characters (only alphanumeric, '-', '_', '.' allowed): ${name}`;
  }
  return undefined;
};
