/// Why a request of a ``LiveClient`` failed.
public enum LiveClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server answered with an error (PROTOCOL.md's codes: `not_allowed`, `bad_request`,
    /// `unavailable`...). `temporary`: the same request may succeed later.
    case server(code: String, message: String, temporary: Bool)
    /// No answer within ``LiveClient/Configuration/requestTimeout`` of the request being sent,
    /// or no connection to send it on within as long.
    case timeout
    /// The connection ended after a publish was sent and before its answer: it may or may not
    /// have been published. (Reads and subscribes are sent again by themselves.)
    case connectionLost
    /// More requests wait for a connection than ``LiveClient/Configuration/maxQueuedRequests``
    /// (or their bytes ``LiveClient/Configuration/maxQueuedBytes``).
    case queueFull
    /// Already subscribed to this topic on this client.
    case alreadySubscribed(String)
    /// The data is not one JSON value.
    case invalidData
    /// The client was closed.
    case closed
    /// The client stopped reconnecting, for this reason.
    case stopped(StopReason)
    /// The server's answer could not be read.
    case invalidReply

    /// Whether the same request may succeed if tried again later.
    public var isTemporary: Bool {
        switch self {
        case .server(_, _, let temporary): return temporary
        case .timeout, .connectionLost, .queueFull: return true
        case .alreadySubscribed, .invalidData, .closed, .stopped, .invalidReply: return false
        }
    }

    public var description: String {
        switch self {
        case .server(let code, let message, _): return "\(code): \(message)"
        case .timeout: return "no reply in time"
        case .connectionLost: return "connection lost before the reply (the publish may or may not have happened)"
        case .queueFull: return "too many requests waiting for a connection"
        case .alreadySubscribed(let topic): return "already subscribed to \(topic)"
        case .invalidData: return "data is not one JSON value"
        case .closed: return "client closed"
        case .stopped(let reason): return "client stopped: \(reason)"
        case .invalidReply: return "unreadable reply"
        }
    }
}

/// Where a ``LiveClient``'s connection stands.
public enum ConnectionState: Sendable, Equatable {
    /// ``LiveClient/connect()`` has not been called.
    case idle
    /// Opening a connection; `attempt` counts from 1 since the last one that opened.
    case connecting(attempt: Int)
    /// Open: requests go out at once.
    case connected
    /// The last attempt failed or the connection ended (`reason`); the next attempt is in `retryIn`.
    case disconnected(reason: String, retryIn: Duration)
    /// No more attempts.
    case stopped(StopReason)
}
