@testable import MizuHTTP
import Mizu
import MizuTestSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The connection writes responses itself (no encoder handler): the same bytes NIO's encoder
/// wrote for every ordinary response, and what a generic encoder could not know done right.
@Suite struct HTTPResponseFramerTests {
    /// What NIO's `HTTPResponseEncoder` writes for `parts`.
    private func encoded(_ parts: [HTTPServerResponsePart]) throws -> [UInt8] {
        let channel = EmbeddedChannel(handler: HTTPResponseEncoder())
        for part in parts { try channel.writeOutbound(part) }
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = buffer { bytes += buffer.readableBytesView }
        }
        _ = try channel.finish()
        return bytes
    }

    private func framed(_ parts: [HTTPServerResponsePart], headRequest: Bool = false) -> [UInt8] {
        var framer = HTTPResponseFramer()
        var bytes: [UInt8] = []
        for part in parts {
            switch part {
            case .head(let head):
                bytes += framer.head(head, headRequest: headRequest, allocator: ByteBufferAllocator()).readableBytesView
            case .body(let body):
                for piece in framer.body(body, allocator: ByteBufferAllocator()) {
                    if case .byteBuffer(let buffer) = piece { bytes += buffer.readableBytesView }
                }
            case .end:
                if let end = framer.end(allocator: ByteBufferAllocator()) { bytes += end.readableBytesView }
            }
        }
        return bytes
    }

    private func body(_ count: Int) -> HTTPServerResponsePart {
        .body(.byteBuffer(ByteBuffer(repeating: UInt8(ascii: "x"), count: count)))
    }

    @Test func ordinaryResponsesAreTheBytesNIOsEncoderWrote() throws {
        let statuses: [HTTPResponseStatus] = [.ok, .created, .noContent, .notModified, .switchingProtocols, .notFound, .custom(code: 599, reasonPhrase: "Odd")]
        let headerSets: [HTTPHeaders] = [
            [:],
            ["content-length": "5", "content-type": "text/plain"],
            ["transfer-encoding": "chunked", "x-a": "1"],
            ["content-length": "5", "transfer-encoding": "chunked"],
        ]
        for status in statuses {
            for headers in headerSets {
                for bodies in [[], [5], [1, 5000, 3], [70_000]] {
                    for version in [HTTPVersion.http1_1, .http1_0] {
                        let parts: [HTTPServerResponsePart] =
                            [.head(HTTPResponseHead(version: version, status: status, headers: headers))] + bodies.map(self.body) + [.end(nil)]
                        #expect(self.framed(parts) == (try self.encoded(parts)), "\(status) \(headers) \(bodies) \(version)")
                    }
                }
            }
        }
    }

    @Test func aHEADAnswerKeepsItsFramingHeadersAndSendsNoBodyOrTerminator() {
        let head = HTTPResponseHead(version: .http1_1, status: .ok)
        let bytes = self.framed([.head(head), self.body(10), .end(nil)], headRequest: true)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text == "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    }

    @Test func aValueCannotSplitTheResponseAndABadNameIsLeftOut() {
        let headers: HTTPHeaders = ["x-echo": "a\r\nset-cookie: stolen=1", "bad name": "v", "x-nul": "a\u{0}b", "ok": "fine"]
        let bytes = self.framed([.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)), .end(nil)])
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text == "HTTP/1.1 200 OK\r\nx-echo: a  set-cookie: stolen=1\r\nx-nul: a b\r\nok: fine\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n")
    }

    @Test func aHeaderTakenFromTheRequestNeverAddsHeadersOnTheWire() async throws {
        let app = App()
        app.get("/echo") { c in
            c.writer.setHeader("x-echo", c.query("v") ?? "")
            try await c.text(.ok, "ok")
        }
        try await withServer(app) { (port: Int) async throws in
            // %0D%0A decodes to CR LF in the query value the handler copies into a header.
            let response = try await request(port: port, "GET", "/echo?v=a%0D%0Aset-cookie:%20stolen=1")
            #expect(response.status == 200)
            #expect(response.header("set-cookie") == nil)
            #expect(response.header("x-echo") == "a  set-cookie: stolen=1")
        }
    }
}
