@_spi(Benchmarking) import MizuWebSocket
import NIOCore

/// One client connection speaking the ChatApp contract: handshake, masked frames out,
/// unmasked (maybe compressed) frames in.
///
/// `@unchecked Sendable`: created inside `submit` on the generator's only event loop and used
/// only by that loop's channel callbacks and the coordinator, which runs there too.
final class BenchConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let index: Int
    let token: String
    let request: String
    unowned let coordinator: Coordinator
    private(set) var context: ChannelHandlerContext?
    private var pending = ByteBuffer()
    private var upgraded = false
    private let inflater: MessageInflater?
    var ready = false
    var closed = false
    /// Per publisher: the next sequence number expected (loss, gap and duplicate checks).
    var expected: [Int] = []

    init(index: Int, token: String, host: String, port: Int, path: String, compress: Bool, coordinator: Coordinator) {
        self.index = index
        self.token = token
        self.coordinator = coordinator
        self.inflater = compress ? MessageInflater() : nil
        let extensions = compress ? "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" : ""
        self.request = "GET \(path)?token=\(token) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\n"
            + "Connection: Upgrade\r\nSec-WebSocket-Key: bWl6dS1iZW5jaC1rZXkxMg==\r\nSec-WebSocket-Version: 13\r\n\(extensions)\r\n"
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        context.writeAndFlush(self.wrapOutboundOut(context.channel.allocator.buffer(string: self.request)), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !self.closed {
            self.closed = true
            self.coordinator.disconnected(self)
        }
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        if self.pending.readableBytes == 0 {
            self.pending = incoming
        } else {
            self.pending.writeBuffer(&incoming)
        }
        if !self.upgraded {
            guard let end = self.pending.readableBytesView.firstRange(of: [13, 10, 13, 10]) else { return }
            let headLength = end.upperBound - self.pending.readableBytesView.startIndex
            let head = self.pending.readString(length: headLength) ?? ""
            guard head.hasPrefix("HTTP/1.1 101") else {
                self.coordinator.failed("handshake refused: \(head.prefix(60))")
                context.close(promise: nil)
                return
            }
            self.upgraded = true
            self.coordinator.connected(self)
        }
        while let (opcode, compressed, payload) = self.nextFrame() {
            switch opcode {
            case 0x1, 0x2:
                var message = payload
                if compressed, let inflater = self.inflater {
                    guard let inflated = try? inflater.inflate(payload) else {
                        self.coordinator.failed("bad compressed message")
                        return
                    }
                    message = inflated
                }
                self.coordinator.received(message, on: self)
            case 0x8:
                context.close(promise: nil)
                return
            case 0x9:
                self.send(opcode: 0xA, payload)
            default:
                break
            }
        }
        self.pending.discardReadBytes()
    }

    private func nextFrame() -> (UInt8, Bool, ByteBuffer)? {
        guard let (first, second) = self.pending.getMultipleIntegers(at: self.pending.readerIndex, as: (UInt8, UInt8).self) else { return nil }
        var headerLength = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let value = self.pending.getInteger(at: self.pending.readerIndex + 2, as: UInt16.self) else { return nil }
            length = Int(value)
            headerLength = 4
        } else if length == 127 {
            guard let value = self.pending.getInteger(at: self.pending.readerIndex + 2, as: UInt64.self) else { return nil }
            length = Int(value)
            headerLength = 10
        }
        guard self.pending.readableBytes >= headerLength + length else { return nil }
        self.pending.moveReaderIndex(forwardBy: headerLength)
        return (first & 0x0F, first & 0x40 != 0, self.pending.readSlice(length: length)!)
    }

    /// Sends one masked frame (RFC 6455 section 5.3; a fixed key is fine for a load test).
    func send(opcode: UInt8 = 0x1, _ payload: ByteBuffer, flush: Bool = true) {
        guard let context, !self.closed else { return }
        var frame = context.channel.allocator.buffer(capacity: payload.readableBytes + 14)
        let length = payload.readableBytes
        if length < 126 {
            frame.writeMultipleIntegers(0x80 | opcode, UInt8(0x80 | length))
        } else if length <= 0xFFFF {
            frame.writeMultipleIntegers(0x80 | opcode, UInt8(0x80 | 126), UInt16(length))
        } else {
            frame.writeMultipleIntegers(0x80 | opcode, UInt8(0x80 | 127), UInt64(length))
        }
        let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        frame.writeBytes(mask)
        var index = 0
        for byte in payload.readableBytesView {
            frame.writeInteger(byte ^ mask[index & 3])
            index += 1
        }
        if flush {
            context.writeAndFlush(self.wrapOutboundOut(frame), promise: nil)
        } else {
            context.write(self.wrapOutboundOut(frame), promise: nil)
        }
    }

    func send(text: String) {
        self.send(ByteBuffer(string: text))
    }
}
