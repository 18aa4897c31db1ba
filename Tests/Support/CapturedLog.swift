import Logging
import NIOConcurrencyHelpers

/// A logger whose lines a test can read back: level and message with metadata, in order.
public final class CapturedLog: Sendable {
    public struct Line: Sendable {
        public let level: Logger.Level
        public let message: String
        public let metadata: [String: String]
    }

    private let lines = NIOLockedValueBox<[Line]>([])

    public init() {}

    public var logger: Logger {
        Logger(label: "captured") { _ in Handler(log: self) }
    }

    public var all: [Line] { self.lines.withLockedValue { $0 } }

    fileprivate func append(_ line: Line) { self.lines.withLockedValue { $0.append(line) } }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = self.metadata.merging(event.metadata ?? [:]) { $1 }
            self.log.append(Line(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
        }
    }
}
