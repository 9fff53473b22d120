/**
 * HTTP/2 settings: how many connections, and the keep-alive and idle
 * settings handed to each connection's connect-node `Http2SessionManager`.
 */
export interface Http2Options {
  /**
   * Send a PING this often while streams are open (off by default): a
   * connection whose PING goes unanswered is declared dead, its calls fail
   * with `Unavailable` and watches resume on a new connection.
   */
  pingIntervalMs?: number;
  /** Also PING an idle connection (needs `pingIntervalMs`). */
  pingIdleConnection?: boolean;
  /** A PING not answered within this time kills the connection (default 15 s). */
  pingTimeoutMs?: number;
  /** Close the connection after this long without a stream (default 15 min). */
  idleConnectionTimeoutMs?: number;
  /**
   * HTTP/2 connections the calls take turns on (default 2; 1 keeps one).
   * Node's HTTP/2 client sends the requests one socket read triggered only
   * after handling the whole read, so on one busy connection client and
   * server take turns; on two they overlap.
   */
  connections?: number;
}
