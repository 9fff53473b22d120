import type { RejectionReason } from "./call-guard.js";

/** Counters the gateway keeps; see `Gateway.stats()`. */
export interface GatewayStats {
  /** Calls forwarded upstream, by method name. */
  forwarded: Record<string, number>;
  /**
   * Calls refused by the gateway itself, by reason (`busy`: at
   * `upstreamMaxStreams`); none reached the upstream.
   */
  rejected: Record<RejectionReason, number>;
  /** Server streams open through the gateway right now. */
  openStreams: number;
  /** Calls (unary and streams) open to the upstream right now. */
  upstreamStreams: number;
  /** HTTP/2 connections to the upstream (more open when one is full of streams). */
  upstreamConnections: number;
}
