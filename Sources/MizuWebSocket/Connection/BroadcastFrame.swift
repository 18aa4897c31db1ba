import NIOCore

/// How a connection takes broadcasts, fixed at the handshake.
package enum BroadcastEncoding: Sendable, Equatable {
    /// No compression negotiated: the plain frame.
    case plain
    /// No server context takeover: one compressed frame per broadcast and window size
    /// serves every such connection.
    case sharedCompressed(windowBits: Int)
    /// Context takeover: the connection compresses with its own stream.
    case ownCompression

    /// The window size whose shared compressed frame this connection wants, if any.
    package var sharedWindow: Int? {
        if case .sharedCompressed(let bits) = self { return bits }
        return nil
    }

    init(_ deflate: NegotiatedDeflate?) {
        guard let deflate, deflate.serverCompresses else {
            self = .plain
            return
        }
        self = deflate.serverNoContextTakeover ? .sharedCompressed(windowBits: deflate.serverMaxWindowBits) : .ownCompression
    }
}

/// One text message prepared once for many connections: the plain frame, and the compressed
/// frame for each window size that connections without context takeover use. The broadcast
/// seam between the protocol layer and Live: a publish builds one, and
/// ``WebSocketConnection/write(_:)`` picks the variant each connection negotiated.
package struct BroadcastFrame: Sendable {
    let payload: ByteBuffer
    let plain: ByteBuffer
    /// Indexed by window bits (9...15), or empty: nothing compressed for this broadcast.
    private let compressed: [ByteBuffer?]
    private let compressionThreshold: Int

    /// Frames `payload` as a text message, compressed once for each of `sharedWindows`
    /// (when it is at least `compression`'s minimum size).
    package init(text payload: ByteBuffer, sharedWindows: some Collection<Int>, compression: PerMessageDeflateConfiguration) {
        let allocator = ByteBufferAllocator()
        self.payload = payload
        self.plain = FrameWriter.frame(opcode: .text, payload: payload, allocator: allocator)
        self.compressionThreshold = compression.minimumCompressionSize
        var compressed: [ByteBuffer?] = []
        if !sharedWindows.isEmpty, payload.readableBytes >= compression.minimumCompressionSize {
            compressed = Array(repeating: nil, count: 16)
            for bits in sharedWindows where (9...15).contains(bits) {
                if let deflated = DeflaterCache.current.compress(payload, windowBits: bits, configuration: compression, allocator: allocator) {
                    compressed[bits] = FrameWriter.frame(opcode: .text, rsv1: true, payload: deflated, allocator: allocator)
                }
            }
        }
        self.compressed = compressed
    }

    /// Bytes of the plain frame on the wire.
    package var size: Int { self.plain.readableBytes }

    /// The frame for a connection that takes broadcasts as `encoding`; nil when the
    /// connection compresses the payload itself.
    func frame(for encoding: BroadcastEncoding) -> ByteBuffer? {
        switch encoding {
        case .plain:
            return self.plain
        case .sharedCompressed(let bits):
            // Below the compression threshold (or if deflate failed) the plain frame goes.
            return (bits < self.compressed.count ? self.compressed[bits] : nil) ?? self.plain
        case .ownCompression:
            return self.payload.readableBytes >= self.compressionThreshold ? nil : self.plain
        }
    }

    /// Writes this broadcast to each of `connections` (all on the calling event loop), each in
    /// the variant it negotiated; the fan-out's inner loop, in this module so the per-connection
    /// call is not a call across modules.
    package func write(to connections: [WebSocketConnection]) {
        // Nothing is retained per delivery (at fan-out rates a retain is a locked write to a
        // cold line): the array keeps every connection alive for the loop, and the plain frame
        // is taken out once (read through `self` inside the loop, it was retained each time).
        let plain = self.plain
        connections.withUnsafeBufferPointer { connections in
            for index in connections.indices {
                _ = Unmanaged.passUnretained(connections[index])._withUnsafeGuaranteedRef { $0.write(self, plain: plain) }
            }
        }
    }
}
