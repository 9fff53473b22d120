import { TaskState } from "@flame-ts/web";

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

export function taskStateName(state: TaskState): string {
  return TaskState[state] ?? String(state);
}

export function time(date: Date | undefined): string {
  return date ? date.toLocaleTimeString() : "";
}

/** Task output as text, cut short for a table cell. */
export function preview(bytes: Uint8Array | undefined, max = 60): string {
  if (!bytes || bytes.length === 0) return "";
  const text = utf8.decode(bytes);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function encode(text: string): Uint8Array {
  return encoder.encode(text);
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
