import Foundation
import Mizu
import MizuTestSupport
import NIOConcurrencyHelpers
import Testing

/// multipart/form-data: fields, files in memory and spooled to disk, and malformed bodies.
@Suite(.timeLimit(.minutes(10))) struct MultipartTests {
    static let boundary = "----mizu7MA4YWxkTrZu0gW"

    static func body(_ parts: [(headers: String, content: [UInt8])], close: Bool = true) -> [UInt8] {
        var bytes = Array("preamble to ignore\r\n".utf8)
        for part in parts {
            bytes += Array("--\(boundary)\r\n\(part.headers)\r\n\r\n".utf8) + part.content + [13, 10]
        }
        if close { bytes += Array("--\(boundary)--\r\n".utf8) }
        return bytes
    }

    private func post(_ body: [UInt8], contentType: String = "multipart/form-data; boundary=\"\(MultipartTests.boundary)\"",
                      _ handler: @escaping @Sendable (Ctx) async throws -> Void) async throws -> HTTPTestResponse {
        let app = App(logsRequests: false)
        app.post("/upload", handler)
        return try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.connect(port: port)
            defer { Task { await client.close() } }
            try await client.send(Array("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
            return try await client.readResponse()
        }
    }

    @Test func fieldsAndFilesSmallOnesInMemoryLargeOnesOnDisk() async throws {
        let big = (0..<5_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        let body = Self.body([
            ("Content-Disposition: form-data; name=\"title\"", Array("Hello; \"world\"".utf8)),
            ("Content-Disposition: form-data; name=\"tag\"", Array("a".utf8)),
            ("Content-Disposition: form-data; name=\"tag\"", Array("b".utf8)),
            ("Content-Disposition: form-data; name=\"note\"; filename=\"C:\\\\Users\\\\ann\\\\note.txt\"\r\nContent-Type: text/plain", Array("small".utf8)),
            ("Content-Disposition: form-data; name=\"blob\"; filename=\"../../etc/blob.bin\"", big),
        ])
        let spooledPath = NIOLockedValueBox<String?>(nil)
        let response = try await self.post(body) { c in
            let form = try c.multipartForm(maxMemory: 1_024)
            defer { form.removeTemporaryFiles() }
            let note = try #require(form.files.first { $0.field == "note" })
            let blob = try #require(form.files.first { $0.field == "blob" })
            if case .disk(let path) = blob.content { spooledPath.withLockedValue { $0 = path } }
            let memory = if case .memory = note.content { "memory" } else { "disk" }
            let summary = [
                form.values["title"] ?? "-", form.values.values("tag").joined(separator: ","),
                "\(note.filename) \(note.contentType) \(String(decoding: try note.data(), as: UTF8.self)) \(memory)",
                "\(blob.filename) \(blob.contentType) \(blob.size) \(try blob.data() == Data(big))",
            ]
            try await c.text(.ok, summary.joined(separator: "|"))
        }
        #expect(response.text == #"Hello; "world"|a,b|note.txt text/plain small memory|blob.bin application/octet-stream 5000 true"#)
        let path = try #require(spooledPath.withLockedValue { $0 }, "the large file went to disk")
        #expect(!FileManager.default.fileExists(atPath: path), "and was removed")
    }

    @Test func malformedBodiesAre400WithTheReasonAndOtherTypes415() async throws {
        let handler: @Sendable (Ctx) async throws -> Void = { c in
            _ = try c.multipartForm()
            try await c.text(.ok, "parsed")
        }
        let field = ("Content-Disposition: form-data; name=\"a\"", Array("1".utf8))
        let cases: [([UInt8], String, Int, String)] = [
            (Array("a=1".utf8), "application/x-www-form-urlencoded", 415, "expected multipart/form-data with a boundary"),
            (Array("x".utf8), "multipart/form-data", 415, "expected multipart/form-data with a boundary"),
            (Array("no delimiter here".utf8), "multipart/form-data; boundary=\(Self.boundary)", 400, "malformed multipart body: no boundary in the body"),
            (Self.body([field], close: false).dropLast(2) + [], "multipart/form-data; boundary=\(Self.boundary)", 400,
             "malformed multipart body: a part is not closed by the boundary"),
            (Self.body([("Content-Disposition: form-data", Array("1".utf8))]), "multipart/form-data; boundary=\(Self.boundary)", 400,
             "malformed multipart body: a part without a name"),
            (Self.body([("Content-Disposition: attachment; name=\"a\"", Array("1".utf8))]), "multipart/form-data; boundary=\(Self.boundary)", 400,
             "malformed multipart body: a part that is not form-data"),
            (Self.body(Array(repeating: field, count: 1_001)), "multipart/form-data; boundary=\(Self.boundary)", 400,
             "malformed multipart body: more than 1000 parts"),
        ]
        for (body, type, status, reason) in cases {
            let response = try await self.post(Array(body), contentType: type, handler)
            #expect(response.status == status && response.text == reason + "\n", "\(type): \(response.status) \(response.text)")
        }
        #expect(try await self.post(Self.body([field]), contentType: "multipart/form-data; boundary=\(Self.boundary)", handler).text == "parsed")
    }
}
