import Foundation
import NIOCore

/// A parsed `multipart/form-data` body (RFC 7578): its fields and its files. Files larger
/// than the `maxMemory` given to ``Ctx/multipartForm(maxMemory:)`` are written to temporary
/// files (Go's `ParseMultipartForm`); the app deletes them when the request's handler returns
/// (``removeTemporaryFiles()`` deletes them sooner).
public struct MultipartForm: Sendable {
    /// An uploaded file.
    public struct File: Sendable {
        /// Where the file's bytes are.
        public enum Content: Sendable {
            /// Held in memory (no larger than `maxMemory`).
            case memory(ByteBuffer)
            /// A temporary file's path.
            case disk(String)
        }

        /// The form field's name.
        public let field: String
        /// The name the client gave (a base name: any directory part is dropped).
        public let filename: String
        /// The part's `Content-Type` (`application/octet-stream` when absent).
        public let contentType: String
        /// Its size in bytes.
        public let size: Int
        /// Its bytes, in memory or spooled to disk; ``data()`` reads them either way.
        public let content: Content

        /// The bytes, read from disk if they were spooled there.
        public func data() throws -> Data {
            switch self.content {
            case .memory(let buffer): return Data(buffer.readableBytesView)
            case .disk(let path): return try Data(contentsOf: URL(fileURLWithPath: path))
            }
        }
    }

    /// Plain fields, in order (repeated names kept).
    public let values: QueryParameters
    /// The uploaded files, in order.
    public let files: [File]

    /// Deletes the files spooled to disk.
    public func removeTemporaryFiles() {
        for file in self.files {
            if case .disk(let path) = file.content { try? FileManager.default.removeItem(atPath: path) }
        }
    }
}

extension Ctx {
    /// The `multipart/form-data` body (Go's `MultipartForm`). 415 for another content type;
    /// 400 with the reason for a malformed body. At most 1,000 parts, each head at most 8 KiB;
    /// the whole body is bounded by the server's `maxBodySize`.
    public func multipartForm(maxMemory: Int = 1 << 20) throws -> MultipartForm {
        guard let type = self.request.header("content-type"), let boundary = MultipartParser.boundary(of: type) else {
            throw HTTPError(.unsupportedMediaType, "expected multipart/form-data with a boundary")
        }
        let form = try MultipartParser(boundary: boundary, maxMemory: maxMemory).parse(self.request.body)
        self.values.addTemporaryFiles(form.files.compactMap { if case .disk(let path) = $0.content { path } else { nil } })
        return form
    }
}
