import NIOCore
import NIOHTTP1

/// Turns one response's parts into bytes: the head with its framing headers made right (RFC 9112
/// section 6), the body as is or in chunks, the chunked terminator. The connection handler writes
/// these itself, so a connection carries no encoder handler to add and, on an upgrade, remove.
///
/// Beyond what a generic encoder can know: the answer to a `HEAD` request keeps its framing
/// headers and sends neither body nor terminator (a chunk terminator after it would be read as
/// the start of the next response). A header value's CR or LF goes out as a space and a name
/// that is not a token is left out, as Go's server does: a value taken from a request can then
/// never end the head early and add headers of its own (response splitting).
struct HTTPResponseFramer {
    /// The current response's body goes in chunks.
    private(set) var chunked = false
    /// The current response answers a `HEAD` request: no body bytes, no terminator.
    private var bodyless = false

    /// Bodies up to this size go in the same buffer as the head (one iovec, one write).
    static let coalescedBodyLimit = 4096

    /// The head's bytes; later ``body(_:allocator:)`` and ``end()`` calls frame by it.
    mutating func head(_ head: HTTPResponseHead, headRequest: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        var headers = head.headers
        self.chunked = Self.frame(&headers, status: head.status, version: head.version)
        self.bodyless = headRequest
        if self.bodyless { self.chunked = false }
        var buffer = allocator.buffer(capacity: 256)
        Self.writeStatusLine(head, into: &buffer)
        for (name, value) in headers where HTTPToken.isToken(name.utf8) {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            Self.writeFieldValue(value, into: &buffer)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        return buffer
    }

    /// The bytes of a body part (none for an empty one or a `HEAD` answer).
    func body(_ part: IOData, allocator: ByteBufferAllocator) -> [IOData] {
        guard !self.bodyless, part.readableBytes > 0 else { return [] }
        guard self.chunked else { return [part] }
        let size = String(part.readableBytes, radix: 16)
        if case .byteBuffer(let bytes) = part, bytes.readableBytes <= Self.coalescedBodyLimit {
            var chunk = allocator.buffer(capacity: size.utf8.count + bytes.readableBytes + 4)
            chunk.writeString(size)
            chunk.writeStaticString("\r\n")
            chunk.writeImmutableBuffer(bytes)
            chunk.writeStaticString("\r\n")
            return [.byteBuffer(chunk)]
        }
        var prefix = allocator.buffer(capacity: size.utf8.count + 2)
        prefix.writeString(size)
        prefix.writeStaticString("\r\n")
        return [.byteBuffer(prefix), part, .byteBuffer(allocator.buffer(staticString: "\r\n"))]
    }

    /// The end's bytes: the terminator of a chunked body, nothing otherwise.
    mutating func end(allocator: ByteBufferAllocator) -> ByteBuffer? {
        defer { self.chunked = false; self.bodyless = false }
        return self.chunked ? allocator.buffer(staticString: "0\r\n\r\n") : nil
    }

    /// RFC 9112 section 6: no framing headers where no content may follow (1xx, 204, 304); a
    /// Content-Length wins over Transfer-Encoding; an HTTP/1.1 body of unknown length is chunked.
    private static func frame(_ headers: inout HTTPHeaders, status: HTTPResponseStatus, version: HTTPVersion) -> Bool {
        guard status.mayHaveResponseBody else {
            headers.remove(name: "content-length")
            headers.remove(name: "transfer-encoding")
            return false
        }
        if headers.contains(name: "content-length") {
            headers.remove(name: "transfer-encoding")
            return false
        }
        guard (version.major, version.minor) >= (1, 1) else { return false }
        headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
        return true
    }

    private static func writeStatusLine(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(head.version.minor == 0 && head.version.major == 1 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeString(String(head.status.code))
        buffer.writeStaticString(" ")
        Self.writeFieldValue(head.status.reasonPhrase, into: &buffer)
        buffer.writeStaticString("\r\n")
    }

    /// The value with CR, LF and NUL as spaces (RFC 9110 section 5.5 lets a recipient do so).
    private static func writeFieldValue(_ value: String, into buffer: inout ByteBuffer) {
        let utf8 = value.utf8
        guard utf8.contains(where: { $0 == 13 || $0 == 10 || $0 == 0 }) else {
            buffer.writeString(value)
            return
        }
        for byte in utf8 { buffer.writeInteger(byte == 13 || byte == 10 || byte == 0 ? UInt8(ascii: " ") : byte) }
    }
}
