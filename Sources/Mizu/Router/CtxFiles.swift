import Foundation

extension Ctx {
    /// Answers with the file at `path` (Go's `File`): streamed from disk, with its content type,
    /// ETag and Last-Modified (304 on a conditional request that matches) and byte ranges (206,
    /// 416). A missing file or a directory is a 404. The path is the handler's to trust: do not
    /// build it from request input without checking it (``Routing/staticFiles(_:directory:)``
    /// does that for a directory).
    public func file(_ path: String) async throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw HTTPError(.notFound, "not found")
        }
        try await StaticFiles.serveFile(self, path: path)
    }

    /// As ``file(_:)``, as an attachment the browser saves as `name` (Go's `Download`):
    /// `Content-Disposition: attachment` with an ASCII `filename` and, for other names, the
    /// UTF-8 `filename*` of RFC 6266.
    public func download(_ path: String, as name: String) async throws {
        self.writer.setHeader("content-disposition", Self.attachment(name))
        try await self.file(path)
    }

    static func attachment(_ name: String) -> String {
        // The ASCII fallback: quotes, backslashes and control characters become "_".
        let fallback = String(name.unicodeScalars.map { scalar -> Character in
            scalar.isASCII && scalar.value >= 0x20 && scalar != "\"" && scalar != "\\" && scalar.value != 0x7F ? Character(scalar) : "_"
        })
        var header = "attachment; filename=\"\(fallback)\""
        if fallback != name {
            let allowed = CharacterSet(charactersIn: "!#$&+-.^_`|~").union(.alphanumerics).subtracting(CharacterSet(charactersIn: "\u{80}"..."\u{10FFFF}"))
            let encoded = name.addingPercentEncoding(withAllowedCharacters: allowed) ?? fallback
            header += "; filename*=UTF-8''\(encoded)"
        }
        return header
    }
}
