import Foundation
import MizuWebSocket
import NIOCore

/// Entry points for the libFuzzer target in Fuzz/: the paths untrusted bytes take through
/// Live and the Redis backplane. Not API: `@_spi(Fuzzing) import MizuLive`.
@_spi(Fuzzing) public enum LiveFuzzTargets {
    /// The live envelope parser (JSON scanner).
    public static func envelope(_ bytes: UnsafeRawBufferPointer) {
        if let message = Live.Message.parse(Data(bytes)) {
            _ = message.encoded()
        }
    }

    /// The standard command set's request parser: the first byte picks the command, the rest
    /// is its data (when it is one JSON value, as the envelope's parser guarantees).
    public static func command(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.first else { return }
        let names: [CommandRequest.Name] = [.subscribe, .unsubscribe, .publish, .history, .presence]
        let data = Data(UnsafeRawBufferPointer(rebasing: bytes.dropFirst()))
        guard data.withUnsafeBytes({ JSONScanner.isValue($0) }) else { return }
        if case .success(let request) = CommandRequest.parse(names[Int(first) % names.count], data) {
            _ = request.subscribeRequest
        }
    }

    /// The RESP parser as the Redis backplane drives it: values out of bytes split at one
    /// point, each built once the resumable check says it arrived whole (the two must agree),
    /// every value walked (as the broker's push handling does).
    public static func resp(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.first else { return }
        let body = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        let split = body.isEmpty ? 0 : Int(first) % (body.count + 1)
        var parser = RESPParser()
        parser.maxBulkLength = 1 << 16
        parser.maxArrayLength = 1 << 12
        var buffer = ByteBuffer(bytes: body[..<split])
        var progress = RESPParser.Progress()
        do {
            for next in [body[split...], body[body.endIndex...]] {
                while true {
                    let complete = try parser.hasCompleteValue(buffer, progress: &progress)
                    let value = try parser.next(&buffer)
                    precondition(complete == (value != nil), "the resumable check and the parser disagree")
                    guard let value else { break }
                    Self.walk(value)
                }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: next))
            }
        } catch {
            // Malformed RESP is refused with an error; only crashes and leaks are findings.
        }
    }

    private static func walk(_ value: RESPValue) {
        if case .array(let items?) = value { items.forEach(Self.walk) }
    }
}
