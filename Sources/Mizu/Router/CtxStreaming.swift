import Foundation
import NIOCore

extension Ctx {
    /// Streams the response (Go's `Stream`): the head goes at once (chunked), then `body`
    /// writes through the writer as it goes. Each write waits while the client reads slower than
    /// the handler writes, so a slow client holds the handler, never an unbounded buffer. The
    /// content type is `contentType` unless one was set.
    public func stream(contentType: String = "application/octet-stream", _ body: (ResponseWriter) async throws -> Void) async throws {
        self.setHeaderIfAbsent("content-type", contentType)
        try await self.writer.flush()
        try await body(self.writer)
    }

    /// Sends server-sent events as they come, with a comment line every `keepAlive` so proxies
    /// keep the connection and a client that left is noticed even when no event comes. Returns
    /// when the sequence ends; throws `ResponseWriter.Error.connectionClosed` once the client
    /// left (the sequence's iteration is then cancelled).
    public func sse<Events: AsyncSequence & Sendable>(_ events: Events, keepAlive: TimeAmount = .seconds(30)) async throws
    where Events.Element == ServerSentEvent {
        let writer = self.writer
        writer.setHeader("content-type", "text/event-stream; charset=utf-8")
        writer.setHeader("cache-control", "no-cache")
        writer.setHeader("x-accel-buffering", "no")  // nginx: pass each event on at once
        try await writer.flush()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await event in events { try await writer.write(event.encoded) }
            }
            group.addTask {
                while true {
                    try await Task.sleep(nanoseconds: UInt64(max(1, keepAlive.nanoseconds)))
                    try await writer.write(": keep-alive\n\n")
                }
            }
            // The events end (or either side fails): the other task is cancelled.
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// Go's `SSE(ch)`: each value as one event whose data is its JSON, then `event: end` with
    /// `data: {}` when the sequence ends.
    public func sse<Values: AsyncSequence & Sendable>(json values: Values, encoder: JSONEncoder = JSONEncoder(), keepAlive: TimeAmount = .seconds(30))
        async throws where Values.Element: Encodable & Sendable
    {
        let encoder = SendableEncoder(encoder)
        let events = values.map { value in ServerSentEvent(data: String(decoding: try encoder.encode(value), as: UTF8.self)) }
        try await self.sse(events, keepAlive: keepAlive)
        try await self.writer.write(ServerSentEvent(data: "{}", event: "end").encoded)
    }
}

/// JSONEncoder is not Sendable; this one is used from one task at a time (the event loop of
/// one response's sequence), and its configuration is not changed after it is made.
private struct SendableEncoder: @unchecked Sendable {
    let encoder: JSONEncoder
    init(_ encoder: JSONEncoder) { self.encoder = encoder }
    func encode(_ value: some Encodable) throws -> Data { try self.encoder.encode(value) }
}
