import MizuHTTP
import MizuWebSocket

extension Live {
    /// The request context hooks receive (Go's `context.Context` with its request).
    public struct Context: Sendable {
        /// The WebSocket upgrade request.
        public let request: Request
    }
}
