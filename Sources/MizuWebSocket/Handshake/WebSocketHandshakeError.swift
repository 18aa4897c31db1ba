import Foundation
import MizuHTTP
import NIOHTTP1

/// Why an opening handshake was refused: the HTTP answer RFC 6455 section 4.2.1 names.
public struct WebSocketHandshakeError: Error, Sendable, CustomStringConvertible {
    /// The status to answer with (400, 405, 426).
    public var status: HTTPResponseStatus
    /// A short plain-text reason.
    public var reason: String
    /// Extra headers (`Sec-WebSocket-Version: 13` with a 426).
    public var headers: [(String, String)]

    public var description: String { "\(self.status.code) \(self.reason)" }

    /// Writes the refusal: the status, the headers and the reason as the body.
    public func respond(_ writer: ResponseWriter) async throws {
        writer.status = self.status
        for (name, value) in self.headers { writer.setHeader(name, value) }
        writer.setHeader("content-type", "text/plain; charset=utf-8")
        try await writer.write(self.reason + "\n")
    }
}
