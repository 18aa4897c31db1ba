@_spi(Fuzzing) import MizuLive
@_spi(Fuzzing) import MizuWebSocket

/// libFuzzer's entry point: the first byte chooses the target, the rest is its input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let input = UnsafeRawBufferPointer(start: start + 1, count: count - 1)
    switch start.load(as: UInt8.self) % 4 {
    case 0: WebSocketFuzzTargets.webSocketFrames(input)
    case 1: LiveFuzzTargets.envelope(input)
    case 2: WebSocketFuzzTargets.extensionHeader(input)
    default: LiveFuzzTargets.resp(input)
    }
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt
) -> CInt

/// SwiftPM links an executable's entry point under this name; hand control to libFuzzer.
@_cdecl("MizuFuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runDriver(&count, &arguments) { start, length in fuzz(start, length) }
}
