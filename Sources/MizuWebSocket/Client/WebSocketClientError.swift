/// Why a client could not open a WebSocket connection.
public enum WebSocketClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not a `ws://` (or, with the `TLS` trait, `wss://`) URL with a host.
    case invalidURL(String)
    /// A header the caller gave cannot be sent (not a token name, or a value with CR, LF or NUL).
    case invalidHeader(String)
    /// The TCP connection could not be made.
    case connectFailed(String)
    /// The server answered the handshake with something other than 101. `retryAfter` is its
    /// `Retry-After` in seconds (429, 503), when it gave one as a number; `reason` the start of
    /// its body.
    case refused(status: Int, retryAfter: Int?, reason: String)
    /// The server's 101 breaks RFC 6455 or 7692 (a wrong `Sec-WebSocket-Accept`, a subprotocol
    /// or an extension that was not offered...): the connection is failed, never used.
    case invalidHandshake(String)
    /// The handshake did not complete within the client's `handshakeTimeout`.
    case timeout
    /// The connection closed before the handshake completed.
    case closed

    public var description: String {
        switch self {
        case .invalidURL(let url): return "invalid WebSocket URL: \(url)"
        case .invalidHeader(let name): return "header cannot be sent: \(name)"
        case .connectFailed(let reason): return "connect failed: \(reason)"
        case .refused(let status, let retryAfter, let reason):
            return "handshake refused with \(status)\(retryAfter.map { ", retry after \($0) s" } ?? "")\(reason.isEmpty ? "" : ": \(reason)")"
        case .invalidHandshake(let reason): return "invalid handshake response: \(reason)"
        case .timeout: return "handshake timed out"
        case .closed: return "connection closed during the handshake"
        }
    }
}
