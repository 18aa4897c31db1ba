import Foundation
import NIOCore

/// A frame as the server sent it.
public struct ServerFrame: Equatable, Sendable {
    public var fin: Bool
    public var rsv1: Bool
    public var opcode: UInt8
    public var payload: [UInt8]

    public init(fin: Bool, rsv1: Bool, opcode: UInt8, payload: [UInt8]) {
        self.fin = fin
        self.rsv1 = rsv1
        self.opcode = opcode
        self.payload = payload
    }

    public var text: String { String(decoding: self.payload, as: UTF8.self) }
    public var closeCode: UInt16? { self.payload.count >= 2 ? UInt16(self.payload[0]) << 8 | UInt16(self.payload[1]) : nil }

    public static func parse(_ buffer: inout ByteBuffer) -> ServerFrame? {
        guard let (first, second) = buffer.getMultipleIntegers(at: buffer.readerIndex, as: (UInt8, UInt8).self) else { return nil }
        var offset = 2
        var length = Int(second & 0x7F)
        if length == 126 {
            guard let value = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) else { return nil }
            length = Int(value)
            offset = 4
        } else if length == 127 {
            guard let value = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt64.self) else { return nil }
            length = Int(value)
            offset = 10
        }
        guard buffer.readableBytes >= offset + length else { return nil }
        buffer.moveReaderIndex(forwardBy: offset)
        let payload = buffer.readBytes(length: length)!
        return ServerFrame(fin: first & 0x80 != 0, rsv1: first & 0x40 != 0, opcode: first & 0x0F, payload: payload)
    }
}

/// A raw WebSocket client for tests: sends exact frames, reads exact frames, all with timeouts.
public struct TestWebSocket: Sendable {
    public let client: RawClient
    public let response: HTTPTestResponse

    public static let key = "dGhlIHNhbXBsZSBub25jZQ=="

    public static func handshakeRequest(path: String = "/", extraHeaders: [String] = []) -> String {
        (["GET \(path) HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket", "Connection: Upgrade",
          "Sec-WebSocket-Key: \(Self.key)", "Sec-WebSocket-Version: 13"] + extraHeaders).joined(separator: "\r\n") + "\r\n\r\n"
    }

    /// Connects and completes the handshake; the response may be a refusal.
    public static func connect(port: Int, path: String = "/", headers: [String] = [], from source: String? = nil) async throws -> TestWebSocket {
        let client = try await RawClient.connect(port: port, from: source)
        try await client.send(Self.handshakeRequest(path: path, extraHeaders: headers))
        let response = try await client.readResponse()
        return TestWebSocket(client: client, response: response)
    }

    public func send(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0) async throws {
        try await self.client.send(clientFrame(opcode, payload, fin: fin, rsv: rsv))
    }

    public func send(text: String) async throws {
        try await self.send(0x1, Array(text.utf8))
    }

    public func readFrame(timeout: TimeAmount = .seconds(5)) async throws -> ServerFrame {
        try await self.client.read("a WebSocket frame", timeout: timeout) { buffer, _ in ServerFrame.parse(&buffer) }
    }

    /// The next frame that is not a ping: the server's heartbeat may come first on a slow run.
    /// `timeout` bounds each frame, six times it the whole wait (pings alone must not keep it
    /// going).
    public func readFrameSkippingPings(timeout: TimeAmount = .seconds(5)) async throws -> ServerFrame {
        let deadline = NIODeadline.now() + Patience.scaled(timeout * 6)
        while true {
            let frame = try await self.readFrame(timeout: timeout)
            if frame.opcode != 0x9 { return frame }
            guard NIODeadline.now() < deadline else { throw RawClient.Timeout(waitingFor: "a frame other than a ping", received: "pings") }
        }
    }

    /// Reads frames until a close frame, then expects the TCP connection to end. `timeout`
    /// bounds each frame, six times it the whole wait (a server that never stops sending).
    public func expectClose(timeout: TimeAmount = .seconds(5)) async throws -> ServerFrame {
        let deadline = NIODeadline.now() + Patience.scaled(timeout * 6)
        while true {
            let frame = try await self.readFrame(timeout: timeout)
            if frame.opcode == 0x8 {
                _ = try await self.client.waitForClose(timeout: timeout)
                return frame
            }
            guard NIODeadline.now() < deadline else { throw RawClient.Timeout(waitingFor: "a close frame", received: "other frames (last opcode \(frame.opcode))") }
        }
    }
}

/// Builds client frames (masked) the way a browser would.
public func clientFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, mask: [UInt8]? = [1, 2, 3, 4]) -> [UInt8] {
    var bytes: [UInt8] = [(fin ? 0x80 : 0) | rsv | opcode]
    let maskBit: UInt8 = mask == nil ? 0 : 0x80
    if payload.count < 126 {
        bytes.append(maskBit | UInt8(payload.count))
    } else if payload.count <= 0xFFFF {
        bytes += [maskBit | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
    } else {
        bytes.append(maskBit | 127)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8((payload.count >> shift) & 0xFF)) }
    }
    if let mask {
        bytes += mask
        bytes += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
    } else {
        bytes += payload
    }
    return bytes
}

