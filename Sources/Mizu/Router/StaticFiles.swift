#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import NIOPosix

extension Routing {
    /// Serves the files under `directory` at `prefix` (GET and HEAD). A path that tries to
    /// leave the directory (`..`, encoded or not, or a symlink pointing out) is a 404.
    public func staticFiles(_ prefix: String, directory: String) {
        let root = URL(fileURLWithPath: directory).standardizedFileURL.resolvingSymlinksInPath().path
        let base = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        let serve: Handler = { ctx in try await StaticFiles.serve(ctx, root: root) }
        self.get(base.isEmpty ? "/" : base, serve)
        self.get(base + "/{path...}", serve)
    }
}

enum StaticFiles {
    /// Files are read in chunks of this size off the event loops, each written before the
    /// next is read: memory per download stays one chunk whatever the file size.
    static let chunkSize = 64 * 1024

    static func serve(_ ctx: Ctx, root: String) async throws {
        guard let path = self.resolve(ctx.param("path"), root: root) else {
            throw HTTPError(.notFound, "not found")
        }
        try await self.serveFile(ctx, path: path)
    }

    /// Streams the regular file at `path` with validators, conditional answers and ranges;
    /// 404 when it cannot be opened.
    static func serveFile(_ ctx: Ctx, path: String) async throws {
        let fileIO = NonBlockingFileIO(threadPool: .singleton)
        let writer = ctx.writer
        let region: FileRegion
        let modified: Int
        do {
            (region, modified) = try await NIOThreadPool.singleton.runIfActive {
                let handle = try NIOFileHandle(_deprecatedPath: path)
                do {
                    let seconds = try handle.withUnsafeFileDescriptor { descriptor -> Int in
                        var info = stat()
                        guard fstat(descriptor, &info) == 0 else { throw IOError(errnoCode: errno, reason: "fstat") }
                        return Int(info.st_mtim.tv_sec)
                    }
                    return (try FileRegion(fileHandle: handle), seconds)
                } catch {
                    try? handle.close()
                    throw error
                }
            }
        } catch {
            throw HTTPError(.notFound, "not found")
        }
        defer { try? region.fileHandle.close() }
        let size = region.readableBytes
        // Validators (RFC 9110 section 8.8): weak, from the size and the modification time.
        let etag = "W/\"\(String(size, radix: 16))-\(String(modified, radix: 16))\""
        writer.setHeader("etag", etag)
        writer.setHeader("last-modified", HTTPDate.format(secondsSince1970: time_t(modified)))
        writer.setHeader("accept-ranges", "bytes")
        writer.setHeader("content-type", self.contentType(for: path))
        if Self.notModified(ctx.request, etag: etag, modified: modified) {
            writer.status = .notModified
            return
        }
        var range = 0..<size
        if ctx.request.method == .GET, let header = ctx.request.header("range"), Self.rangeApplies(ctx.request, etag: etag, modified: modified) {
            switch ByteRange.parse(header, size: size) {
            case .whole:
                break
            case .unsatisfiable:
                writer.status = .rangeNotSatisfiable
                writer.setHeader("content-range", "bytes */\(size)")
                return
            case .part(let part) where part.count < size:
                range = part
                writer.status = .partialContent
                writer.setHeader("content-range", "bytes \(part.lowerBound)-\(part.upperBound - 1)/\(size)")
            case .part:
                break  // the whole file: a plain 200
            }
        }
        if range.count == size { writer.status = .ok }
        if range.count <= Self.chunkSize, range.count == size {
            // One read, one write: the head and body leave together.
            let bytes = try await fileIO.read(fileHandle: region.fileHandle, fromOffset: 0, byteCount: size, allocator: writer.allocator)
            try await writer.write(bytes)
            return
        }
        writer.setHeader("content-length", String(range.count))
        try await writer.flush()
        guard ctx.request.method != .HEAD else { return }
        var offset = range.lowerBound
        while offset < range.upperBound {
            let chunk = try await fileIO.read(
                fileHandle: region.fileHandle, fromOffset: Int64(offset), byteCount: min(Self.chunkSize, range.upperBound - offset),
                allocator: writer.allocator)
            // A file that shrank while being sent cannot honour its Content-Length: the
            // connection closes (the error fails the response) rather than lie.
            guard chunk.readableBytes > 0 else { throw HTTPError(.internalServerError, "file changed while being sent") }
            try await writer.write(chunk)
            offset += chunk.readableBytes
        }
    }

    /// RFC 9110 section 13.1: If-None-Match decides when present (weak comparison, `*`);
    /// otherwise If-Modified-Since, for GET and HEAD.
    static func notModified(_ request: Request, etag: String, modified: Int) -> Bool {
        guard request.method == .GET || request.method == .HEAD else { return false }
        if let match = request.header("if-none-match") {
            let opaque = { (tag: Substring) in tag.hasPrefix("W/") ? tag.dropFirst(2) : tag }
            return match.split(separator: ",").contains { candidate in
                let tag = candidate.trimmingHTTPWhitespace()
                return tag == "*" || opaque(Substring(tag)) == opaque(Substring(etag))
            }
        }
        if let since = request.header("if-modified-since"), let date = HTTPDate.parse(since) {
            return modified <= date
        }
        return false
    }

    /// RFC 9110 section 13.1.5: with `If-Range`, a range is served only while the file is the one
    /// the client has part of: a strong entity-tag that matches (ours are weak, so none does) or
    /// the exact `Last-Modified` date. Anything else, malformed included, gets the whole file, so a
    /// resumed download is never spliced from two versions.
    static func rangeApplies(_ request: Request, etag: String, modified: Int) -> Bool {
        guard let condition = request.header("if-range")?.trimmingHTTPWhitespace() else { return true }
        if condition.hasPrefix("\"") || condition.hasPrefix("W/") {
            return !condition.hasPrefix("W/") && !etag.hasPrefix("W/") && condition == etag
        }
        return HTTPDate.parse(condition) == modified
    }

    /// The file for a decoded request path, or nil when it is not a regular file inside `root`.
    static func resolve(_ relative: String, root: String) -> String? {
        let segments = relative.split(separator: "/", omittingEmptySubsequences: true)
        for segment in segments where segment == ".." || segment == "." || segment.contains("\0") || segment.contains("\\") {
            return nil
        }
        var candidate = root + "/" + segments.joined(separator: "/")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), isDirectory.boolValue {
            candidate += "/index.html"
        }
        let real = URL(fileURLWithPath: candidate).resolvingSymlinksInPath().path
        guard real == root || real.hasPrefix(root + "/") else { return nil }
        guard FileManager.default.fileExists(atPath: real, isDirectory: &isDirectory), !isDirectory.boolValue else {
            return nil
        }
        return real
    }

    static func contentType(for path: String) -> String {
        let ext = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
        return Self.types[ext] ?? "application/octet-stream"
    }

    private static let types: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
        "css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8",
        "mjs": "text/javascript; charset=utf-8", "json": "application/json",
        "txt": "text/plain; charset=utf-8", "svg": "image/svg+xml", "png": "image/png",
        "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
        "ico": "image/x-icon", "wasm": "application/wasm", "xml": "application/xml",
        "pdf": "application/pdf", "woff": "font/woff", "woff2": "font/woff2",
    ]
}
