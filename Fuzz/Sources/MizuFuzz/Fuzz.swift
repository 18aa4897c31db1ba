@_spi(Fuzzing) import Mizu
@_spi(Fuzzing) import MizuLive
@_spi(Fuzzing) import MizuLiveClient
@_spi(Fuzzing) import MizuWebSocket

/// libFuzzer's entry point: the first byte chooses the target, the rest is its input.
/// Selectors 0-3 are the first four targets, as before (the seeds in Fuzz/corpus use exactly
/// those bytes); new targets take the next numbers, and every byte maps to one (modulo).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let input = UnsafeRawBufferPointer(start: start + 1, count: count - 1)
    switch start.load(as: UInt8.self) % 19 {
    case 0: WebSocketFuzzTargets.webSocketFrames(input)
    case 1: LiveFuzzTargets.envelope(input)
    case 2: WebSocketFuzzTargets.extensionHeader(input)
    case 3: LiveFuzzTargets.resp(input)
    case 4: HTTPFuzzTargets.httpDate(input)
    case 5: HTTPFuzzTargets.byteRange(input)
    case 6: HTTPFuzzTargets.cookie(input)
    case 7: HTTPFuzzTargets.mediaType(input)
    case 8: HTTPFuzzTargets.multipart(input)
    case 9: HTTPFuzzTargets.acceptEncoding(input)
    case 10: HTTPFuzzTargets.form(input)
    case 11: HTTPFuzzTargets.json(input)
    case 12: HTTPFuzzTargets.requestTarget(input)
    case 13: HTTPFuzzTargets.requestHead(input)
    case 14: WebSocketFuzzTargets.webSocketClientFrames(input)
    case 15: LiveFuzzTargets.command(input)
    case 16: LiveClientFuzzTargets.serverFrame(input)
    case 17: WebSocketFuzzTargets.headerTokens(input)
    default: HTTPFuzzTargets.requestParser(input)
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
