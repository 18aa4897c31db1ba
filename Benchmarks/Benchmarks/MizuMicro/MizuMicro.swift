import Benchmark
import Foundation
@_spi(Benchmarking) import MizuLive
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

    // Issue 17: each operation costs the same at 1,000, 100,000 and 1,000,000 subscribers.
    for size in [1_000, 100_000, 1_000_000] {
        Benchmark("subscribe + unsubscribe, the \(size)th subscriber of one topic", configuration: .init(scalingFactor: .kilo, maxDuration: .seconds(5))) { benchmark in
            let harness = RegistryHarness(sessions: size)
            harness.subscribe(0..<(size - 1), to: "t")
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                harness.subscribe((size - 1)..<size, to: "t")
                harness.unsubscribe(size - 1, from: "t")
            }
            benchmark.stopMeasurement()
            precondition(harness.subscriberCount("t") == size - 1)
        }
    }

    Benchmark("add + remove in the registry, 100,000 topics of 10 subscribers", configuration: .init(scalingFactor: .kilo, maxDuration: .seconds(5))) { benchmark in
        let harness = RegistryHarness(sessions: 11)
        for topic in 0..<100_000 {
            for index in 0..<10 { harness.registryAdd(index, to: "t\(topic)") }
        }
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
        Benchmark("connect + disconnect in the session table, \(size) open", configuration: .init(scalingFactor: .kilo, maxDuration: .seconds(5))) { benchmark in
            let harness = RegistryHarness(sessions: size)
            benchmark.startMeasurement()
            for iteration in benchmark.scaledIterations { harness.reregister(iteration % size) }
        }
    }

    Benchmark("publish to 100,000 sessions (in process)", configuration: .init(scalingFactor: .one, maxIterations: 50)) { benchmark in
        let harness = try FanoutHarness(sessions: 100_000)
        let data = Data(#"{"user":"alice","data":{"text":"hello"}}"#.utf8)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { harness.publish(data) }
    }
}
