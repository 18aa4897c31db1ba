import CZlib

/// Decompresses one gzip member (tests check what the server compressed); nil if it is not
/// valid gzip or does not end where the bytes end.
public func gunzip(_ bytes: [UInt8]) -> [UInt8]? {
    gunzip(bytes, complete: true)
}

/// What the first bytes of a gzip stream decompress to so far (a streamed, flushed body).
public func gunzipPrefix(_ bytes: [UInt8]) -> [UInt8]? {
    gunzip(bytes, complete: false)
}

private func gunzip(_ bytes: [UInt8], complete: Bool) -> [UInt8]? {
    // zlib's state points back at the z_stream: it must not move.
    let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    stream.initialize(to: z_stream())
    defer { stream.deallocate() }
    guard inflateInit2_(stream, 16 + 15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
    defer { inflateEnd(stream) }
    var output: [UInt8] = []
    var input = bytes
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    let status: Int32 = input.withUnsafeMutableBufferPointer { inputBuffer in
        stream.pointee.next_in = inputBuffer.baseAddress
        stream.pointee.avail_in = uInt(inputBuffer.count)
        while true {
            let (result, produced) = chunk.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                stream.pointee.next_out = out.baseAddress
                stream.pointee.avail_out = uInt(out.count)
                let result = inflate(stream, Z_NO_FLUSH)
                return (result, out.count - Int(stream.pointee.avail_out))
            }
            output.append(contentsOf: chunk[0..<produced])
            if result != Z_OK { return result }
            if !complete, stream.pointee.avail_in == 0, produced < chunk.count { return Z_OK }
        }
    }
    if !complete { return status == Z_OK || status == Z_STREAM_END ? output : nil }
    return status == Z_STREAM_END && stream.pointee.avail_in == 0 ? output : nil
}
