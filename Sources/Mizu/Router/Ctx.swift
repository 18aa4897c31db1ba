import Foundation
import NIOCore
import NIOHTTP1

/// A route handler: serves one request through its ``Ctx``.
public typealias Handler = @Sendable (Ctx) async throws -> Void

/// Wraps a handler with behaviour before and after it.
public typealias Middleware = @Sendable (@escaping Handler) -> Handler

/// An error that carries the HTTP status to answer with.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The status to answer with.
    public var status: HTTPResponseStatus
    /// A short reason, sent as the plain-text body by the default error handler.
    public var message: String

    /// An error answering `status` with `message` (the status's reason phrase by default).
    public init(_ status: HTTPResponseStatus, _ message: String? = nil) {
        self.status = status
        self.message = message ?? status.reasonPhrase
    }

    public var description: String { "\(self.status.code) \(self.message)" }
}

/// The request context of a route handler: the request, its parameters, and the response.
public final class Ctx: Sendable {
    /// The request, with the route's path parameters filled in.
    public let request: Request
    /// The response writer, for streaming and upgrades.
    public let writer: ResponseWriter
    /// Values middleware set for this request (`c.values[.requestID]`).
    public let values: RequestValues

    init(request: Request, writer: ResponseWriter, values: RequestValues = RequestValues()) {
        self.request = request
        self.writer = writer
        self.values = values
    }

    /// A context for `request` answered through `writer`, for adapters between handler kinds.
    public static func make(request: Request, writer: ResponseWriter) -> Ctx {
        Ctx(request: request, writer: writer)
    }

    /// A path parameter (`{name}` or `{name...}`); empty when the route has none by that name.
    public func param(_ name: String) -> String {
        self.request.pathParameters[name] ?? ""
    }

    /// The first query value for `name`.
    public func query(_ name: String) -> String? {
        self.request.query[name]
    }

    /// The first request header value for `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        self.request.header(name)
    }

    /// The client's address (the TCP peer; behind a proxy, the proxy's).
    public var clientAddress: SocketAddress? { self.request.remoteAddress }

    /// The `application/x-www-form-urlencoded` body as parameters (Go's `Form()`); empty
    /// for another content type.
    public func form() -> QueryParameters {
        guard let type = self.request.header("content-type")?.lowercased(),
            type.hasPrefix("application/x-www-form-urlencoded")
        else { return QueryParameters("") }
        return QueryParameters(String(decoding: self.request.body.readableBytesView, as: UTF8.self))
    }

    /// Sets a response header unless one of that name is already set (Go's `HeaderIfNone`).
    public func setHeaderIfAbsent(_ name: String, _ value: String) {
        if !self.writer.headers.contains(name: name) { self.writer.setHeader(name, value) }
    }

    /// A cookie's value from the `Cookie` header.
    public func cookie(_ name: String) -> String? {
        for line in self.request.headers[canonicalForm: "cookie"] {
            // Split at the `;` and `=` bytes: a combining mark after one would hide it inside a Character.
            for pair in line.utf8.split(separator: UInt8(ascii: ";")) {
                let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1).map { Substring($0) }
                if parts.count == 2, parts[0].trimmingHTTPWhitespace() == name {
                    return parts[1].trimmingHTTPWhitespace()
                }
            }
        }
        return nil
    }

    /// Sets the response status for what is written next.
    @discardableResult
    public func status(_ status: HTTPResponseStatus) -> Ctx {
        self.writer.status = status
        return self
    }

    /// Sets a response header.
    @discardableResult
    public func setHeader(_ name: String, _ value: String) -> Ctx {
        self.writer.setHeader(name, value)
        return self
    }

    /// Answers with `value` encoded as JSON: sorted keys and unescaped slashes, or as
    /// `encoder` says (dates, key strategies, pretty printing).
    public func json(_ status: HTTPResponseStatus, _ value: some Encodable, encoder: JSONEncoder? = nil) async throws {
        let data = try (encoder ?? Self.defaultEncoder()).encode(value)
        try await self.bytes(status, data, contentType: "application/json; charset=utf-8")
    }

    /// Sorted keys and unescaped slashes: stable output for clients and tests.
    private static func defaultEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// Answers with plain text.
    public func text(_ status: HTTPResponseStatus, _ text: String) async throws {
        try await self.bytes(status, Array(text.utf8), contentType: "text/plain; charset=utf-8")
    }

    /// Answers with HTML.
    public func html(_ status: HTTPResponseStatus, _ html: String) async throws {
        try await self.bytes(status, Array(html.utf8), contentType: "text/html; charset=utf-8")
    }

    /// Answers with raw bytes of the given content type.
    public func bytes(_ status: HTTPResponseStatus, _ bytes: some Sequence<UInt8>, contentType: String) async throws {
        self.writer.status = status
        self.writer.setHeader("content-type", contentType)
        try await self.writer.write(bytes)
    }

    /// Redirects to `location` (302 unless given).
    public func redirect(_ location: String, status: HTTPResponseStatus = .found) async throws {
        self.writer.status = status
        self.writer.setHeader("location", location)
    }

    /// Answers 204 No Content.
    public func noContent() {
        self.writer.status = .noContent
    }

    /// Decodes the JSON body as `T`. A body over `limit` bytes, or one that is not JSON of
    /// that shape, throws an ``HTTPError`` (413 or 400) saying what was wrong. As Go mizu's
    /// `BindJSON`, an object member that `T` does not read is refused (400 "unknown field")
    /// unless `allowUnknownFields` is set.
    public func bindJSON<T: Decodable>(_ type: T.Type, limit: Int = 1 << 20, allowUnknownFields: Bool = false) throws -> T {
        let body = self.request.body
        guard body.readableBytes <= limit else {
            throw HTTPError(.payloadTooLarge, "request body exceeds \(limit) bytes")
        }
        guard body.readableBytes > 0 else { throw HTTPError(.badRequest, "empty request body") }
        do {
            let data = Data(body.readableBytesView)
            return allowUnknownFields ? try JSONDecoder().decode(T.self, from: data) : try StrictJSONDecoder.decode(T.self, from: data)
        } catch let unknown as UnknownJSONField {
            throw HTTPError(.badRequest, "unknown field \"\(unknown.path)\"")
        } catch let DecodingError.keyNotFound(key, _) {
            throw HTTPError(.badRequest, "missing field \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context) {
            throw HTTPError(.badRequest, "wrong type at \(Self.path(context.codingPath))")
        } catch let DecodingError.valueNotFound(_, context) {
            throw HTTPError(.badRequest, "missing value at \(Self.path(context.codingPath))")
        } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
            throw HTTPError(.badRequest, "invalid value at \(Self.path(context.codingPath))")
        } catch {
            throw HTTPError(.badRequest, "malformed JSON")
        }
    }

    private static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.isEmpty ? "top level" : "\"" + codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") + "\""
    }

    /// Starts a Server-Sent Events stream; each `send` writes one event and flushes.
    public func eventStream() async throws -> EventStream {
        self.writer.setHeader("content-type", "text/event-stream")
        self.writer.setHeader("cache-control", "no-cache")
        try await self.writer.flush()
        return EventStream(writer: self.writer)
    }
}

/// A Server-Sent Events stream (WHATWG HTML, section 9.2).
public struct EventStream: Sendable {
    let writer: ResponseWriter

    /// Sends one event; multi-line data becomes several `data:` lines.
    public func send(data: String, event: String? = nil, id: String? = nil) async throws {
        var text = ""
        if let event { text += "event: \(event)\n" }
        if let id { text += "id: \(id)\n" }
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) {
            text += "data: \(line)\n"
        }
        text += "\n"
        try await self.writer.write(text)
        try await self.writer.flush()
    }
}
