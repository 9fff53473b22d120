import type { RejectionReason } from "./call-guard.js";

/** Counters the gateway keeps; see `Gateway.stats()`. */
export interface GatewayStats {
  /** Calls forwarded upstream, by method name. */
  forwarded: Record<string, number>;
  /** Calls refused by the gateway itself, by reason; none reached the upstream. */
  rejected: Record<RejectionReason, number>;
  /** Server streams open through the gateway right now. */
  openStreams: number;
  /**
   * HTTP/2 connections to the upstream: the shared pool's (more open when
   * one is full of streams) and one per relayed client connection (either
   * relay; the gRPC-Web relay's once a call opened it).
   */
  upstreamConnections: number;
  /** Client connections the gRPC relay carries frame by frame (`grpcRelay`). */
  relayedConnections: number;
  /** HTTP/1.1 client connections the gRPC-Web relay serves (`grpcWebRelay`). */
  webRelayedConnections: number;
}
