import Foundation
@testable import Mizu
@testable import MizuHTTP
import MizuTestSupport
import NIOCore
import Testing

/// Go mizu's compress middleware (gzip), over real sockets.
@Suite(.timeLimit(.minutes(10))) struct GzipTests {
    static let json = "[" + (0..<200).map { #"{"id":\#($0),"name":"item \#($0)"}"# }.joined(separator: ",") + "]"

    static func app(_ directory: String? = nil, gate: Gate = Gate()) -> App {
        let app = App(logsRequests: false)
        app.use(Middlewares.gzip())
        app.get("/json") { c in try await c.bytes(.ok, Array(Self.json.utf8), contentType: "application/json") }
        app.get("/small") { c in try await c.text(.ok, "tiny") }
        app.get("/tagged") { c in
            c.writer.setHeader("etag", #""v1""#)
            try await c.text(.ok, String(repeating: "tagged ", count: 300))
        }
        app.get("/png") { c in try await c.bytes(.ok, [UInt8](repeating: 0, count: 4096), contentType: "image/png") }
        app.get("/encoded") { c in
            c.writer.setHeader("content-encoding", "br")
            try await c.bytes(.ok, [UInt8](repeating: 1, count: 4096), contentType: "text/plain")
        }
        app.get("/stream") { c in
            try await c.stream(contentType: "text/plain; charset=utf-8") { writer in
                try await writer.write(String(repeating: "first ", count: 100))
                await gate.wait()
                try await writer.write(String(repeating: "second ", count: 100))
            }
        }
        if let directory { app.staticFiles("/files", directory: directory) }
        return app
    }

    @Test func compressesWhatQualifiesForClientsThatTakeGzip() async throws {
        try await withServer(Self.app()) { (port: Int) async throws in
            let gzip = ["Accept-Encoding": "br;q=1, gzip;q=0.8"]
            let json = try await request(port: port, "GET", "/json", headers: gzip)
            #expect(json.status == 200 && json.header("content-encoding") == "gzip" && json.header("vary") == "Accept-Encoding")
            #expect(json.header("content-length") == String(json.body.count) && json.body.count < Self.json.utf8.count / 3)
            #expect(gunzip(json.body) == Array(Self.json.utf8))
            // HEAD: the same headers (the compressed length), no body.
            let head = try await request(port: port, "HEAD", "/json", headers: gzip)
            #expect(head.header("content-length") == json.header("content-length") && head.header("content-encoding") == "gzip" && head.body.isEmpty)
            // Not taken by the client: identity, but caches are told it depends.
            for refused in [[:], ["Accept-Encoding": "gzip;q=0, *"], ["Accept-Encoding": "identity"], ["Accept-Encoding": "br"]] {
                let plain = try await request(port: port, "GET", "/json", headers: refused)
                #expect(plain.header("content-encoding") == nil && plain.text == Self.json && plain.header("vary") == "Accept-Encoding", "\(refused)")
            }
            #expect(try await request(port: port, "GET", "/json", headers: ["Accept-Encoding": "*"]).header("content-encoding") == "gzip")
            // Below the minimum size, another type, or already encoded: left alone.
            let tagged = try await request(port: port, "GET", "/tagged", headers: gzip)
            #expect(tagged.header("etag") == #"W/"v1""# && tagged.header("content-encoding") == "gzip")
            let small = try await request(port: port, "GET", "/small", headers: gzip)
            #expect(small.text == "tiny" && small.header("content-encoding") == nil)
            let png = try await request(port: port, "GET", "/png", headers: gzip)
            #expect(png.body.count == 4096 && png.header("content-encoding") == nil && png.header("vary") == nil)
            let encoded = try await request(port: port, "GET", "/encoded", headers: gzip)
            #expect(encoded.header("content-encoding") == "br" && encoded.body.count == 4096)
        }
    }

    @Test func aStreamedBodyHoldsACompactCompressor() throws {
        // A streamed response may live as long as its client wants: its zlib state is 32 KiB,
        // not zlib's default 256 KiB (counted by the stream's own allocator).
        let full = GzipStream(level: 6).stateBytes, compact = GzipStream(level: 6, compact: true).stateBytes
        #expect(full > 250 * 1024, "\(full) bytes in a default compressor")
        #expect(compact < 40 * 1024, "\(compact) bytes in a streamed-body compressor")
        // Still gzip: a piece compressed compactly comes back whole.
        let stream = GzipStream(level: 6, compact: true)
        let text = String(repeating: "compact but still gzip ", count: 400)
        let packed = try #require(stream.compress(ByteBuffer(string: text), last: true, allocator: ByteBufferAllocator()))
        #expect(gunzip(Array(packed.readableBytesView)) == Array(text.utf8))
    }

    @Test func aStreamedBodyIsCompressedAsItGoes() async throws {
        let gate = Gate()
        try await withServer(Self.app(gate: gate)) { (port: Int) async throws in
            // The first write arrives, compressed and decompressible, while the handler waits.
            let client = try await RawClient.connect(port: port)
            try await client.send("GET /stream HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n")
            let firstChunk: [UInt8] = try await client.read("the first chunk") { buffer, _ in
                let bytes = Array(buffer.readableBytesView)
                guard let headEnd = bytes.firstRange(of: Array("\r\n\r\n".utf8))?.upperBound,
                    let lineEnd = bytes[headEnd...].firstRange(of: Array("\r\n".utf8)),
                    let size = Int(String(decoding: bytes[headEnd..<lineEnd.lowerBound], as: UTF8.self), radix: 16),
                    bytes.count >= lineEnd.upperBound + size
                else { return nil }
                return Array(bytes[lineEnd.upperBound..<(lineEnd.upperBound + size)])
            }
            let soFar = String(decoding: try #require(gunzipPrefix(firstChunk)), as: UTF8.self)
            #expect(soFar == String(repeating: "first ", count: 100))
            gate.open()
            await client.close()
            let response = try await request(port: port, "GET", "/stream", headers: ["Accept-Encoding": "gzip"])
            #expect(response.header("transfer-encoding")?.lowercased() == "chunked" && response.header("content-encoding") == "gzip")
            let text = String(decoding: try #require(gunzip(response.body)), as: UTF8.self)
            #expect(text == String(repeating: "first ", count: 100) + String(repeating: "second ", count: 100))
        }
    }

    @Test func staticFilesKeepAWeakValidatorAndRangesStayIdentity() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-gzip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = String(repeating: "<p>hello</p>\n", count: 300)
        try page.write(to: directory.appendingPathComponent("page.html"), atomically: true, encoding: .utf8)
        try await withServer(Self.app(directory.path)) { (port: Int) async throws in
            let full = try await request(port: port, "GET", "/files/page.html", headers: ["Accept-Encoding": "gzip"])
            #expect(full.header("content-encoding") == "gzip" && gunzip(full.body) == Array(page.utf8))
            let etag = try #require(full.header("etag"))
            #expect(etag.hasPrefix("W/") && full.header("accept-ranges") == nil)
            // The validator still works for a conditional request.
            let again = try await request(port: port, "GET", "/files/page.html", headers: ["Accept-Encoding": "gzip", "If-None-Match": etag])
            #expect(again.status == 304)
            let range = try await request(port: port, "GET", "/files/page.html", headers: ["Accept-Encoding": "gzip", "Range": "bytes=0-9"])
            #expect(range.status == 206 && range.header("content-encoding") == nil && range.text == "<p>hello</")
        }
    }
}
