import Foundation
import NIOCore

/// RFC 2046 section 5.1.1 framing of a body already read whole: delimiters, part heads
/// (Content-Disposition and Content-Type), contents. Bounded in parts and head size.
struct MultipartParser {
    static let maxParts = 1_000
    static let maxHeadSize = 8 * 1024

    let boundary: [UInt8]
    let maxMemory: Int

    init(boundary: String, maxMemory: Int) {
        self.boundary = Array(boundary.utf8)
        self.maxMemory = maxMemory
    }

    /// The boundary parameter of a `multipart/form-data` content type (1 to 70 characters).
    /// Delimiters are found among the bytes, as everywhere in this parser: a combining mark
    /// after `;`, `=`, `:` or `"` would otherwise hide it inside one Character.
    static func boundary(of contentType: String) -> String? {
        let parts = contentType.utf8.split(separator: UInt8(ascii: ";")).map { Substring($0).trimmingHTTPWhitespace() }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for parameter in parts.dropFirst() {
            let pair = parameter.utf8.split(separator: UInt8(ascii: "="), maxSplits: 1).map { Substring($0) }
            guard pair.count == 2, pair[0].lowercased() == "boundary" else { continue }
            var value = String(pair[1])
            if value.utf8.count >= 2, value.utf8.first == UInt8(ascii: "\""), value.utf8.last == UInt8(ascii: "\"") {
                value = String(Substring(value.utf8.dropFirst().dropLast()))
            }
            return (1...70).contains(value.utf8.count) ? value : nil
        }
        return nil
    }

    func parse(_ body: ByteBuffer) throws -> MultipartForm {
        let bytes = Array(body.readableBytesView)
        let delimiter = Array("--".utf8) + self.boundary
        // The first delimiter may follow a preamble; later ones follow a CRLF.
        guard var cursor = Self.find(delimiter, in: bytes, from: 0) else { throw Self.bad("no boundary in the body") }
        var values: [(String, String)] = []
        var files: [MultipartForm.File] = []
        var spooled: [String] = []
        do {
            while true {
                cursor += delimiter.count
                if Self.starts(bytes, at: cursor, with: Array("--".utf8)) { break }  // the close delimiter
                guard Self.starts(bytes, at: cursor, with: [13, 10]) else { throw Self.bad("a boundary line does not end with CRLF") }
                cursor += 2
                guard values.count + files.count < Self.maxParts else { throw Self.bad("more than \(Self.maxParts) parts") }
                guard let headEnd = Self.find([13, 10, 13, 10], in: bytes, from: cursor), headEnd - cursor <= Self.maxHeadSize else {
                    throw Self.bad("a part's head is missing or over \(Self.maxHeadSize) bytes")
                }
                let head = try Self.head(bytes[cursor..<headEnd])
                let start = headEnd + 4
                guard let end = Self.find([13, 10] + delimiter, in: bytes, from: start) else { throw Self.bad("a part is not closed by the boundary") }
                let content = bytes[start..<end]
                if let filename = head.filename {
                    var file: MultipartForm.File.Content
                    if content.count > self.maxMemory {
                        let path = FileManager.default.temporaryDirectory.appendingPathComponent("mizu-upload-\(UUID().uuidString)").path
                        guard FileManager.default.createFile(atPath: path, contents: Data(content), attributes: [.posixPermissions: 0o600]) else {
                            throw HTTPError(.internalServerError, "cannot store an upload")
                        }
                        spooled.append(path)
                        file = .disk(path)
                    } else {
                        file = .memory(ByteBuffer(bytes: content))
                    }
                    files.append(MultipartForm.File(
                        field: head.name, filename: filename, contentType: head.contentType ?? "application/octet-stream",
                        size: content.count, content: file))
                } else {
                    guard let text = String(validating: content, as: UTF8.self) else { throw Self.bad("field \"\(head.name)\" is not UTF-8") }
                    values.append((head.name, text))
                }
                cursor = end + 2
            }
        } catch {
            for path in spooled { try? FileManager.default.removeItem(atPath: path) }
            throw error
        }
        return MultipartForm(values: QueryParameters(pairs: values), files: files)
    }

    private struct Head {
        var name: String
        var filename: String?
        var contentType: String?
    }

    private static func head(_ bytes: ArraySlice<UInt8>) throws -> Head {
        guard let text = String(validating: bytes, as: UTF8.self) else { throw Self.bad("a part's head is not UTF-8") }
        var name: String?
        var filename: String?
        var contentType: String?
        for line in text.split(separator: "\r\n") {
            let pair = line.utf8.split(separator: UInt8(ascii: ":"), maxSplits: 1).map { Substring($0) }
            guard pair.count == 2 else { throw Self.bad("a malformed part header") }
            let value = pair[1].trimmingHTTPWhitespace()
            switch pair[0].lowercased() {
            case "content-disposition":
                let parameters = Self.parameters(value)
                guard parameters.first?.0 == "form-data" else { throw Self.bad("a part that is not form-data") }
                name = parameters.first { $0.0 == "name" }?.1
                filename = parameters.first { $0.0 == "filename" }?.1.map(Self.baseName)
            case "content-type":
                contentType = value
            default:
                continue
            }
        }
        guard let name, !name.isEmpty else { throw Self.bad("a part without a name") }
        return Head(name: name, filename: filename, contentType: contentType)
    }

    /// `form-data; name="a"; filename="b"`: the first item alone, then key-value pairs (values
    /// quoted or bare; a quoted value may hold `;` and escaped quotes).
    private static func parameters(_ value: String) -> [(String, String?)] {
        var result: [(String, String?)] = []
        var items: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        for scalar in value.unicodeScalars {
            if escaped {
                current.unicodeScalars.append(scalar)
                escaped = false
            } else if quoted && scalar == "\\" {
                escaped = true
            } else if scalar == "\"" {
                quoted.toggle()
            } else if scalar == ";" && !quoted {
                items.append(current)
                current = ""
            } else {
                current.unicodeScalars.append(scalar)
            }
        }
        items.append(current)
        for (index, item) in items.enumerated() {
            let trimmed = item.trimmingHTTPWhitespace()
            if index == 0 {
                result.append((trimmed.lowercased(), nil))
                continue
            }
            let pair = trimmed.utf8.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false).map { Substring($0) }
            guard pair.count == 2 else { continue }
            result.append((pair[0].trimmingHTTPWhitespace().lowercased(), String(pair[1])))
        }
        return result
    }

    /// The last `/`- or `\\`-separated part of a client's file name, split at the bytes (a
    /// combining mark after a separator must not keep a directory part in the name).
    private static func baseName(_ path: String) -> String {
        path.utf8.split { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") }.last.map { String(Substring($0)) } ?? ""
    }

    private static func bad(_ reason: String) -> HTTPError {
        HTTPError(.badRequest, "malformed multipart body: \(reason)")
    }

    private static func starts(_ bytes: [UInt8], at index: Int, with prefix: [UInt8]) -> Bool {
        index + prefix.count <= bytes.count && bytes[index..<index + prefix.count].elementsEqual(prefix)
    }

    private static func find(_ needle: [UInt8], in bytes: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, needle.count <= bytes.count else { return nil }
        var index = start
        let last = bytes.count - needle.count
        while index <= last {
            guard let hit = bytes[index...last].firstIndex(of: first) else { return nil }
            if bytes[hit..<hit + needle.count].elementsEqual(needle) { return hit }
            index = hit + 1
        }
        return nil
    }
}
