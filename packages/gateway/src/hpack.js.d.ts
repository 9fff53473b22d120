// Types for the parts of hpack.js (plain JavaScript, no types of its own) the relay uses.
declare module "hpack.js" {
  import type { EventEmitter } from "node:events";

  interface DecodedField {
    name: string;
    value: string;
    neverIndex: boolean;
  }

  interface Decompressor extends EventEmitter {
    write(chunk: Buffer): boolean;
    /** Decodes what was written; a malformed block is emitted as "error". */
    execute(): void;
    read(): DecodedField | null;
    updateTableSize(size: number): void;
  }

  const hpack: {
    decompressor: { create(options: { table: { maxSize: number } }): Decompressor };
  };
  export default hpack;
  export type { Decompressor };
}
