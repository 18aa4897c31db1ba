import Foundation
import Histogram
import NIOCore
import NIOPosix

/// Settings of one run.
struct RunSettings {
    var host = "127.0.0.1"
    var port = 8080
    var publisherPort: Int?
    var path = "/ws"
    var subscribers = 1000
    var publishers = 1
    var size = 64
    var window = 16
    var rate: Int?
    var warmup = 3.0
    var duration = 10.0
    var compress = false
    var serverPID: Int32?
    var idleOnly = false
}

/// Drives a run on the generator's single event loop: connects everyone, subscribes, then
/// publishes (closed loop or fixed rate) and counts what arrives.
///
/// `@unchecked Sendable`: the generator's group has exactly one event loop and every method
/// runs there (scheduled tasks, channel callbacks, and `submit` from the main thread), so the
/// mutable state is never touched by two threads.
final class Coordinator: @unchecked Sendable {
    enum Phase { case connecting, warmup, measure, drain, done }

    let settings: RunSettings
    let eventLoop: any EventLoop
    var connections: [BenchConnection] = []
    private var readyCount = 0
    private(set) var phase = Phase.connecting
    private let done: EventLoopPromise<Report>

    private var nextSequence: [Int]
    private var inFlight: [Int]
    private var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    private var deliveries = 0
    private var lost = 0
    private var gaps = 0
    private var duplicates = 0
    private var disconnects = 0
    private var failures: [String] = []
    private var measureStart: UInt64 = 0
    private var measureEnd: UInt64 = 0
    private var cpuStart: Double?
    private var cpuEnd: Double?
    private var rateTask: RepeatedTask?
    private var rateCredit = 0.0
    private var rateLast: UInt64 = 0
    private var rateCursor = 0
    private var idleReceived = 0
    private var padding: String

    struct Report {
        var settings: RunSettings
        var deliveries: Int
        var seconds: Double
        var p50, p90, p99, max: UInt64
        var lost, gaps, duplicates, disconnects: Int
        var serverCPU: Double?
        var failures: [String]
        var rssBeforeKiB: Int?
        var rssAfterKiB: Int?
        var idleReceived: Int
        /// From the first connect until every connection had its subscriptions acknowledged.
        var connectSeconds: Double?
        var connectServerCPU: Double?
    }

    /// Set when the first connection starts (the connect storm begins).
    var connectStart: (time: UInt64, cpu: Double?)?
    private var connectEnd: (time: UInt64, cpu: Double?)?

    var rssBefore: Int?
    var rssAfter: Int?

    init(settings: RunSettings, eventLoop: any EventLoop) {
        self.settings = settings
        self.eventLoop = eventLoop
        self.done = eventLoop.makePromise()
        self.nextSequence = Array(repeating: 0, count: settings.publishers)
        self.inFlight = Array(repeating: 0, count: settings.publishers)
        self.padding = String(repeating: "x", count: max(0, settings.size - 40))
    }

    var result: EventLoopFuture<Report> { self.done.futureResult }

    var publisherBase: Int { self.settings.subscribers }

    // MARK: Connection events

    func connected(_ connection: BenchConnection) {
        connection.expected = Array(repeating: 0, count: self.settings.publishers)
        connection.send(text: #"{"topic":"subscribe","data":{"topic":"chat:general"}}"#)
        // A forbidden subscribe answers "not allowed": proof that the one before it is done.
        connection.send(text: #"{"topic":"subscribe","data":{"topic":"admin:ack"}}"#)
    }

    func disconnected(_ connection: BenchConnection) {
        if self.phase != .done { self.disconnects += 1 }
    }

    func failed(_ reason: String) {
        if self.failures.count < 5 { self.failures.append(reason) }
    }

    func received(_ message: ByteBuffer, on connection: BenchConnection) {
        let view = message.readableBytesView
        if !connection.ready {
            if view.firstRange(of: Keys.notAllowed) != nil {
                connection.ready = true
                self.readyCount += 1
                if self.readyCount == self.connections.count { self.allReady() }
            }
            return
        }
        guard let publisher = integer(after: Keys.publisher, in: message).map(Int.init),
            let sequence = integer(after: Keys.sequence, in: message).map(Int.init),
            let sent = integer(after: Keys.time, in: message), publisher < self.settings.publishers
        else { return }
        if self.settings.idleOnly {
            self.idleReceived += 1
            if self.idleReceived == self.settings.subscribers { self.finish() }
            return
        }
        let expected = connection.expected[publisher]
        if sequence == expected {
            connection.expected[publisher] = sequence + 1
        } else if sequence > expected {
            self.gaps += 1
            self.lost += sequence - expected
            connection.expected[publisher] = sequence + 1
        } else {
            self.duplicates += 1
        }
        if self.phase == .measure {
            self.deliveries += 1
            let now = monotonicNanoseconds()
            self.histogram.record(now > sent ? (now - sent) / 1000 : 0)
        }
        // Closed loop: a publisher's own copy coming back frees a place in its window; across
        // nodes, the copy that reached the other node (subscriber 0) does.
        let windowReceiver = self.settings.publisherPort == nil ? self.publisherBase + publisher : 0
        if connection.index == windowReceiver, self.settings.rate == nil {
            self.inFlight[publisher] -= 1
            if self.phase == .warmup || self.phase == .measure { self.publish(from: publisher) }
        }
    }

    private enum Keys {
        static let publisher = Array(#""p":"#.utf8)
        static let sequence = Array(#""s":"#.utf8)
        static let time = Array(#""t":"#.utf8)
        static let notAllowed = Array(#""not allowed""#.utf8)
    }

    /// Whether every receiver has every message sent so far.
    private var everythingArrived: Bool {
        self.connections.allSatisfy { connection in
            !connection.ready || connection.closed || connection.expected == self.nextSequence
        }
    }

    // MARK: Phases

    private func allReady() {
        self.connectEnd = (monotonicNanoseconds(), self.settings.serverPID.flatMap { ServerProcess(pid: $0).cpuSeconds() })
        if self.settings.idleOnly {
            // Idle connections: let memory settle, sample it, then one publish must reach all.
            self.eventLoop.scheduleTask(in: .seconds(2)) {
                self.rssAfter = self.settings.serverPID.flatMap { ServerProcess(pid: $0).rssKiB() }
                self.phase = .measure
                self.publish(from: 0)
            }
            self.eventLoop.scheduleTask(in: .seconds(32)) { self.finish() }
            return
        }
        self.phase = .warmup
        if let rate = self.settings.rate {
            self.rateLast = monotonicNanoseconds()
            self.rateTask = self.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { _ in
                // Credit by elapsed time, so a late tick does not lower the rate.
                let now = monotonicNanoseconds()
                self.rateCredit += Double(rate) * Double(now - self.rateLast) / 1e9
                self.rateLast = now
                while self.rateCredit >= 1 {
                    self.rateCredit -= 1
                    self.publish(from: self.rateCursor % self.settings.publishers)
                    self.rateCursor += 1
                }
            }
        } else {
            for publisher in 0..<self.settings.publishers {
                for _ in 0..<self.settings.window { self.publish(from: publisher) }
            }
        }
        self.eventLoop.scheduleTask(in: .nanoseconds(Int64(self.settings.warmup * 1e9))) { self.startMeasuring() }
    }

    private func startMeasuring() {
        self.phase = .measure
        self.histogram.reset()
        self.deliveries = 0
        self.measureStart = monotonicNanoseconds()
        self.cpuStart = self.settings.serverPID.flatMap { ServerProcess(pid: $0).cpuSeconds() }
        self.eventLoop.scheduleTask(in: .nanoseconds(Int64(self.settings.duration * 1e9))) { self.stopMeasuring() }
    }

    private func stopMeasuring() {
        self.measureEnd = monotonicNanoseconds()
        self.cpuEnd = self.settings.serverPID.flatMap { ServerProcess(pid: $0).cpuSeconds() }
        self.phase = .drain
        self.rateTask?.cancel()
        // Whatever is still on its way gets up to 10 s to arrive; only then is it lost.
        self.eventLoop.scheduleTask(in: .seconds(10)) { self.finish() }
        self.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(20), delay: .milliseconds(20)) { task in
            if self.phase == .done || self.everythingArrived {
                task.cancel()
                self.finish()
            }
        }
    }

    private func publish(from publisher: Int) {
        let connection = self.connections[self.publisherBase + publisher]
        let sequence = self.nextSequence[publisher]
        self.nextSequence[publisher] += 1
        self.inFlight[publisher] += 1
        connection.send(text: #"{"topic":"chat","data":{"p":\#(publisher),"s":\#(sequence),"t":\#(monotonicNanoseconds()),"x":"\#(self.padding)"}}"#)
    }

    /// Ends the run and reports; safe to call more than once.
    func finish() {
        guard self.phase != .done else { return }
        if !self.settings.idleOnly {
            // Every receiver should have every message each publisher sent.
            for connection in self.connections where connection.ready {
                for publisher in 0..<self.settings.publishers {
                    let missing = self.nextSequence[publisher] - connection.expected[publisher]
                    if missing > 0 { self.lost += missing }
                }
            }
        }
        self.phase = .done
        let seconds = Double(self.measureEnd &- self.measureStart) / 1e9
        let serverCPU = self.cpuStart.flatMap { start in self.cpuEnd.map { $0 - start } }
        self.done.succeed(Report(
            settings: self.settings, deliveries: self.deliveries, seconds: seconds,
            p50: self.histogram.valueAtPercentile(50), p90: self.histogram.valueAtPercentile(90),
            p99: self.histogram.valueAtPercentile(99), max: self.histogram.max,
            lost: self.lost, gaps: self.gaps, duplicates: self.duplicates, disconnects: self.disconnects,
            serverCPU: serverCPU, failures: self.failures, rssBeforeKiB: self.rssBefore, rssAfterKiB: self.rssAfter,
            idleReceived: self.idleReceived,
            connectSeconds: self.connectStart.flatMap { start in self.connectEnd.map { Double($0.time &- start.time) / 1e9 } },
            connectServerCPU: self.connectStart.flatMap { start in self.connectEnd.flatMap { end in start.cpu.flatMap { c in end.cpu.map { $0 - c } } } }))
    }
}
