import CoreMetrics
#if TLS
import NIOSSL
#endif
import Foundation
import NIOCore

extension Live {
    /// What went wrong talking to Redis.
    public enum RedisError: Swift.Error, Sendable, Equatable, CustomStringConvertible {
        /// The URL is not `redis://[[user]:password@]host[:port][/db]`.
        case invalidURL(String, reason: String)
        /// No TCP connection could be made.
        case connectionFailed(host: String, port: Int, reason: String)
        /// Redis answered a command with an error (wrong password, database out of range...).
        case refused(command: String, message: String)
        /// Redis sent something that is not RESP, or not the answer a command expects.
        case protocolViolation(String)
        /// The connection closed before the answer came.
        case connectionClosed
        /// Redis did not answer (or confirm a subscription) in time.
        case timeout
        /// More than `maxPendingPublishBytes` wait to be sent to Redis (it is slower than the
        /// callers): the command was not sent. Retrying later may succeed.
        case overloaded

        public var description: String {
            switch self {
            case .invalidURL(let url, let reason): return "invalid Redis URL \"\(url)\": \(reason)"
            case .connectionFailed(let host, let port, let reason): return "cannot connect to Redis at \(host):\(port): \(reason)"
            case .refused(let command, let message): return "Redis refused \(command): \(message)"
            case .protocolViolation(let what): return "Redis protocol violation: \(what)"
            case .connectionClosed: return "the Redis connection closed"
            case .timeout: return "Redis did not answer in time"
            case .overloaded: return "too many commands wait to be sent to Redis"
            }
        }
    }
}
