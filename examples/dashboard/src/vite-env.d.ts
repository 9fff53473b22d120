/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Base URL of a gRPC-Web endpoint for Flame (the emulator, or a gateway). */
  readonly VITE_FLAME_URL?: string;
}
