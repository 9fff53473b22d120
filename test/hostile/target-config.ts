/** What target-process.ts starts: the emulator, or a gateway in front of one. */
export type TargetConfig =
  | { kind: "emulator"; limits: Record<string, number> }
  | {
      kind: "gateway";
      upstream: string;
      limits: Record<string, number>;
      bearerToken?: string;
    };
