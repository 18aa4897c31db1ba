import Benchmark
import Foundation
@_spi(Benchmarking) import MizuWebSocket
import MizuLive
import MizuLiveBenchmarkSupport
import NIOCore

/// Micro-benchmarks of the hot paths, with allocation counts so regressions show.
/// Run: cd Benchmarks && swift package benchmark --target MizuMicro
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000)

    let small = ByteBuffer(string: #"{"topic":"chat:general","data":{"user":"alice","data":{"text":"hello"}}}"#)
    let large = ByteBuffer(string: String(repeating: "live fan-out payload ", count: 200))

    Benchmark("frame encode, 72 B") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(BenchmarkKernels.encodeFrame(small)) }
    }

    let maskedFrames: ByteBuffer = {
        var buffer = ByteBuffer()
        for _ in 0..<100 {
            buffer.writeMultipleIntegers(UInt8(0x81), UInt8(0x80 | 72))
            buffer.writeBytes([1, 2, 3, 4])
            buffer.writeBytes(small.readableBytesView.prefix(72))
        }
        return buffer
    }()
    Benchmark("frame decode + unmask, 100 x 72 B", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(BenchmarkKernels.decodeFrames(maskedFrames)) }
    }

    let text = Array(String(repeating: "κόσμε and plain ASCII text ", count: 150).utf8)
    Benchmark("UTF-8 validation, 4 KiB mixed") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(text.withUnsafeBytes { BenchmarkKernels.validateUTF8($0) }) }
    }

    let envelope = Data(#"{"topic":"chat","data":{"text":"hello there","n":[1,2,3]}}"#.utf8)
    Benchmark("envelope parse") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(Live.Message.parse(envelope)) }
    }
    Benchmark("envelope encode") { benchmark in
        let message = Live.Message(topic: "chat:general", data: Data(#"{"user":"alice","data":{"text":"hi"}}"#.utf8))
        for _ in benchmark.scaledIterations { blackHole(message.encoded()) }
    }

    Benchmark("deflate per message, 4 KiB, no context takeover", configuration: .init(scalingFactor: .one)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(BenchmarkKernels.deflate(large)) }
    }

    Benchmark("publish to 10,000 sessions (in process)", configuration: .init(scalingFactor: .one, maxIterations: 200)) { benchmark in
        let harness = try FanoutHarness(sessions: 10_000)
        let data = Data(#"{"user":"alice","data":{"text":"hello"}}"#.utf8)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { harness.publish(data) }
    }

    Benchmark("publish to 10,000 compressed sessions (in process)", configuration: .init(scalingFactor: .one, maxIterations: 200)) { benchmark in
        let harness = try FanoutHarness(sessions: 10_000, compressed: true)
        let data = Data(("[" + Array(repeating: #"{"text":"compressible chat line"}"#, count: 8).joined(separator: ",") + "]").utf8)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { harness.publish(data) }
    }

    // Issue 15: the same publish on a topic that keeps a history (appended under the topic's lock).
    Benchmark("publish to 10,000 sessions, topic with history (in process)", configuration: .init(scalingFactor: .one, maxIterations: 200)) { benchmark in
        let harness = try FanoutHarness(sessions: 10_000, history: Live.HistoryPolicy(size: 100, ttl: .seconds(3600)))
        let data = Data(#"{"user":"alice","data":{"text":"hello"}}"#.utf8)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { harness.publish(data) }
    }

    // Issue 15: memory of 10,000 topics' histories, 100 messages of 64 B each (divide by 10,000).
    Benchmark(
        "history memory, 10,000 topics x 100 messages of 64 B",
        configuration: .init(metrics: [.mallocCountTotal], warmupIterations: 0, scalingFactor: .one, maxDuration: .seconds(20), maxIterations: 1)
    ) { benchmark in
        benchmark.startMeasurement()
        let fill = HistoryFill(topics: 10_000, messages: 100, size: 64)
        benchmark.stopMeasurement()
        // The resident growth this fill caused, per topic: one sample in a fresh process (a later
        // sample would reuse what the previous one freed).
        FileHandle.standardError.write(Data("history memory: \(fill.residentBytesAdded / 10_000) bytes per topic\n".utf8))
        blackHole(fill)
    }

    // Issue 17: each operation costs the same at 1,000, 100,000 and 1,000,000 subscribers.
    // The harnesses are built once, on first use: the closure runs once per sample.
    let scale = Benchmark.Configuration(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput], warmupIterations: 2,
        scalingFactor: .kilo, maxDuration: .seconds(3), maxIterations: 30)
    for size in [1_000, 100_000, 1_000_000] {
        let built = Once {
            let harness = RegistryHarness(sessions: size)
            harness.subscribe(0..<(size - 1), to: "t")
            return harness
        }
        Benchmark("subscribe + unsubscribe, the \(size)th subscriber of one topic", configuration: scale) { benchmark in
            let harness = built.value
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                harness.subscribe((size - 1)..<size, to: "t")
                harness.unsubscribe(size - 1, from: "t")
            }
            benchmark.stopMeasurement()
            precondition(harness.subscriberCount("t") == size - 1)
        }
    }

    let manyTopics = Once {
        let harness = RegistryHarness(sessions: 11)
        for topic in 0..<100_000 {
            for index in 0..<10 { harness.registryAdd(index, to: "t\(topic)") }
        }
        return harness
    }
    Benchmark("add + remove in the registry, 100,000 topics of 10 subscribers", configuration: scale) { benchmark in
        let harness = manyTopics.value
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            let topic = "t\(iteration % 100_000)"
            harness.registryAdd(10, to: topic)
            harness.registryRemove(10, from: topic)
        }
        benchmark.stopMeasurement()
        precondition(harness.topicCount == 100_000)
    }

    for size in [1_000, 100_000, 1_000_000] {
        let built = Once { RegistryHarness(sessions: size) }
        Benchmark("connect + disconnect in the session table, \(size) open", configuration: scale) { benchmark in
            let harness = built.value
            benchmark.startMeasurement()
            for iteration in benchmark.scaledIterations { harness.reregister(iteration % size) }
        }
    }

    let wide = Once { try! FanoutHarness(sessions: 100_000) }
    Benchmark("publish to 100,000 sessions (in process)", configuration: .init(scalingFactor: .one, maxDuration: .seconds(5), maxIterations: 30)) { benchmark in
        let harness = wide.value
        let data = Data(#"{"user":"alice","data":{"text":"hello"}}"#.utf8)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { harness.publish(data) }
    }
}

/// A value built on first use and kept: benchmark closures run once per sample, and a
/// million-session harness must not be rebuilt for each.
final class Once<Value>: @unchecked Sendable {
    // @unchecked: package-benchmark runs a target's benchmarks one at a time on one thread.
    private let make: () -> Value
    private var built: Value?

    init(_ make: @escaping () -> Value) { self.make = make }

    var value: Value {
        if let built { return built }
        let value = self.make()
        self.built = value
        return value
    }
}
