import NIOCore

/// An HTTP/1.1 response parsed from raw bytes (Content-Length, chunked, or until close).
public struct HTTPTestResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    /// The body as UTF-8 text.
    public var text: String { String(decoding: self.body, as: UTF8.self) }

    /// The first value of a header (case-insensitive).
    public func header(_ name: String) -> String? {
        self.headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    public struct Malformed: Error {}

    /// Parses one response from the front of `buffer`; nil while incomplete.
    public static func parse(_ buffer: inout ByteBuffer, headRequest: Bool = false, eof: Bool = false) throws -> HTTPTestResponse? {
        let view = buffer.readableBytesView
        guard let headEnd = view.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let headText = String(decoding: view[view.startIndex..<headEnd.lowerBound], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        // Strict: stray bytes before a status line (a body sent after a HEAD answer, say) are an error.
        guard statusLine.count >= 2, statusLine[0].hasPrefix("HTTP/1."), let status = Int(statusLine[1]) else { throw Malformed() }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var response = HTTPTestResponse(status: status, headers: headers, body: [])
        var rest = buffer
        rest.moveReaderIndex(forwardBy: headEnd.upperBound - view.startIndex)
        if headRequest || status < 200 || status == 204 || status == 304 {
            buffer = rest
            return response
        }
        if let length = response.header("content-length").flatMap(Int.init) {
            guard let body = rest.readBytes(length: length) else { return nil }
            response.body = body
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                let chunkView = rest.readableBytesView
                guard let lineEnd = chunkView.firstRange(of: Array("\r\n".utf8)) else { return nil }
                let sizeText = String(decoding: chunkView[chunkView.startIndex..<lineEnd.lowerBound], as: UTF8.self)
                guard let size = Int(sizeText.split(separator: ";")[0], radix: 16) else { throw Malformed() }
                guard rest.readableBytes >= (lineEnd.upperBound - chunkView.startIndex) + size + 2 else { return nil }
                rest.moveReaderIndex(forwardBy: lineEnd.upperBound - chunkView.startIndex)
                if size == 0 {
                    rest.moveReaderIndex(forwardBy: 2)
                    break
                }
                response.body += rest.readBytes(length: size)!
                rest.moveReaderIndex(forwardBy: 2)
            }
        } else {
            guard eof else { return nil }
            response.body = rest.readBytes(length: rest.readableBytes) ?? []
        }
        buffer = rest
        return response
    }
}

extension String {
    func trimmingCharacters(in set: Set<Character>) -> String {
        String(self.drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

extension Set where Element == Character {
    static let whitespaces: Set<Character> = [" ", "\t"]
}
