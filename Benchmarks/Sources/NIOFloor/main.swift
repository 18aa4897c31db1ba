// nio-floor: the least a SwiftNIO server spends per WebSocket connect + subscribe, to put the
// ChatApp's connect path (issue 28) and gorilla's on one scale. One handler per connection
// reads the request head itself (no HTTP decoder, encoder or handler swap), answers 101,
// reads the client's frames and keeps subscribers in a set; a text frame that is not a
// subscribe goes to every subscriber (loadgen's verify). No router, hooks, limits, timers or
// logging, no validation beyond finding the key: a floor to measure against, not a server.
//   swift run -c release nio-floor --port 8090
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: String) -> String {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return fallback }
    return arguments[index + 1]
}
let host = option("--host", "127.0.0.1")
let port = Int(option("--port", "8090")) ?? 8090

/// Every subscribed connection, for the verify publish.
let subscribers = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])

final class FloorHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var head = ByteBuffer()
    private var upgraded = false
    private var frames = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = Self.unwrapInboundIn(data)
        if self.upgraded {
            self.frames.writeBuffer(&bytes)
            self.readFrames(context: context)
            return
        }
        self.head.writeBuffer(&bytes)
        let view = self.head.readableBytesView
        guard let end = view.firstRange(of: [13, 10, 13, 10]) else { return }
        let text = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
        var key = ""
        for line in text.split(separator: "\r\n") where line.lowercased().hasPrefix("sec-websocket-key:") {
            key = line.dropFirst("sec-websocket-key:".count).trimmingCharacters(in: .whitespaces)
        }
        let accept = Data(sha1(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
        let response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n"
        context.writeAndFlush(Self.wrapOutboundOut(context.channel.allocator.buffer(string: response)), promise: nil)
        self.upgraded = true
        self.head.moveReaderIndex(to: self.head.readerIndex + end.upperBound - view.startIndex)
        self.frames = self.head
        self.head = ByteBuffer()
        self.readFrames(context: context)
    }

    /// Client frames (masked, payloads under 64 KiB here): a subscribe joins the set, a close
    /// ends, any other text frame is sent to every subscriber.
    private func readFrames(context: ChannelHandlerContext) {
        while self.frames.readableBytes >= 6 {
            let start = self.frames.readerIndex
            let first = self.frames.getInteger(at: start, as: UInt8.self)!
            var length = Int(self.frames.getInteger(at: start + 1, as: UInt8.self)! & 0x7F)
            var offset = 2
            if length == 126 {
                guard let extended = self.frames.getInteger(at: start + 2, as: UInt16.self) else { return }
                length = Int(extended)
                offset = 4
            }
            guard self.frames.readableBytes >= offset + 4 + length else { return }
            let mask = self.frames.getBytes(at: start + offset, length: 4)!
            var payload = self.frames.getBytes(at: start + offset + 4, length: length)!
            for index in payload.indices { payload[index] ^= mask[index & 3] }
            self.frames.moveReaderIndex(forwardBy: offset + 4 + length)
            switch first & 0x0F {
            case 0x8:
                context.close(promise: nil)
                return
            case 0x1:
                if payload.starts(with: Array(#"{"topic":"subscribe""#.utf8)) {
                    let channel = context.channel
                    subscribers.withLockedValue { $0[ObjectIdentifier(channel)] = channel }
                } else {
                    var frame = ByteBuffer()
                    frame.writeInteger(UInt8(0x81))
                    if payload.count < 126 {
                        frame.writeInteger(UInt8(payload.count))
                    } else {
                        frame.writeInteger(UInt8(126))
                        frame.writeInteger(UInt16(payload.count))
                    }
                    frame.writeBytes(payload)
                    for channel in subscribers.withLockedValue({ Array($0.values) }) { channel.writeAndFlush(frame, promise: nil) }
                }
            default:
                break
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let id = ObjectIdentifier(context.channel)
        subscribers.withLockedValue { _ = $0.removeValue(forKey: id) }
        context.fireChannelInactive()
    }
}

/// SHA-1 (FIPS 180-4), for the accept value only.
func sha1(_ message: [UInt8]) -> [UInt8] {
    var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
    var bytes = message
    let bitLength = UInt64(message.count) * 8
    bytes.append(0x80)
    while bytes.count % 64 != 56 { bytes.append(0) }
    for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
    var w = [UInt32](repeating: 0, count: 80)
    for chunk in stride(from: 0, to: bytes.count, by: 64) {
        for i in 0..<16 {
            w[i] = (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[chunk + i * 4 + $1]) }
        }
        for i in 16..<80 {
            let value = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
            w[i] = value << 1 | value >> 31
        }
        var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
        for i in 0..<80 {
            let (f, k): (UInt32, UInt32)
            switch i {
            case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
            case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
            case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
            default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
            }
            let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
            (e, d, c, b, a) = (d, c, b << 30 | b >> 2, a, temp)
        }
        h[0] = h[0] &+ a
        h[1] = h[1] &+ b
        h[2] = h[2] &+ c
        h[3] = h[3] &+ d
        h[4] = h[4] &+ e
    }
    return h.flatMap { value in (0..<4).map { UInt8(truncatingIfNeeded: value >> UInt32(24 - $0 * 8)) } }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let server = try await ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(FloorHandler()) }
    }
    .bind(host: host, port: port).get()
print("nio-floor listening on \(host):\(port)")
try await server.closeFuture.get()
