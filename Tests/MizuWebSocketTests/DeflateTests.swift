@testable import MizuWebSocket
import MizuTestSupport
import NIOCore
import Testing

@Suite(.timeLimit(.minutes(10))) struct DeflateTests {
    let allocator = ByteBufferAllocator()

    @Test func parsesExtensionHeadersByTheGrammar() {
        let offers = ExtensionHeaderParser.parse([
            "permessage-deflate; client_max_window_bits; server_max_window_bits=\"10\", x-other ; a=b",
            "Permessage-Deflate",
        ])
        #expect(offers == [
            ExtensionOffer(name: "permessage-deflate", parameters: [("client_max_window_bits", nil), ("server_max_window_bits", "10")]),
            ExtensionOffer(name: "x-other", parameters: [("a", "b")]),
            ExtensionOffer(name: "permessage-deflate", parameters: []),
        ])
        #expect(ExtensionHeaderParser.parse([" , permessage-deflate ,"])?.count == 1)
        for broken in ["permessage-deflate; =1", "permessage-deflate; a=\"unterminated", "permessage-deflate a", ";x", "p; a=\"b c\"", "p; a=\"\""] {
            #expect(ExtensionHeaderParser.parse([broken]) == nil, "\(broken)")
        }
    }

    @Test func negotiatesTheFirstAcceptableOffer() {
        let defaults = PerMessageDeflateConfiguration()
        func negotiate(_ header: String, _ configuration: PerMessageDeflateConfiguration = PerMessageDeflateConfiguration()) -> NegotiatedDeflate? {
            NegotiatedDeflate.negotiate(offers: ExtensionHeaderParser.parse([header])!, configuration: configuration)
        }
        #expect(negotiate("permessage-deflate")?.responseHeader == "permessage-deflate; server_no_context_takeover")
        #expect(negotiate("permessage-deflate; client_max_window_bits")?.clientMaxWindowBits == 15)
        #expect(negotiate("permessage-deflate; client_max_window_bits=10")?.responseHeader
            == "permessage-deflate; server_no_context_takeover; client_max_window_bits=10")
        #expect(negotiate("permessage-deflate; server_max_window_bits=12; client_no_context_takeover")?.responseHeader
            == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12")
        let eight = negotiate("permessage-deflate; server_max_window_bits=8")
        #expect(eight?.serverMaxWindowBits == 8)
        #expect(eight?.serverCompresses == false, "zlib cannot honour 8: accept, but never compress")
        // Invalid offers are declined and the next one wins.
        #expect(negotiate("permessage-deflate; server_max_window_bits=16, permessage-deflate; client_no_context_takeover")?.clientNoContextTakeover == true)
        for declined in ["permessage-deflate; server_max_window_bits", "permessage-deflate; server_max_window_bits=7",
                         "permessage-deflate; client_max_window_bits=010", "permessage-deflate; unknown=1",
                         "permessage-deflate; server_no_context_takeover=1",
                         "permessage-deflate; client_no_context_takeover; client_no_context_takeover", "x-webkit-deflate-frame"] {
            #expect(negotiate(declined) == nil, "\(declined)")
        }
        var limited = defaults
        limited.clientMaxWindowBits = 9
        limited.serverNoContextTakeover = false
        #expect(negotiate("permessage-deflate; client_max_window_bits", limited)?.responseHeader == "permessage-deflate; client_max_window_bits=9")
        #expect(negotiate("permessage-deflate", limited)?.responseHeader == "permessage-deflate", "no client window limit unless offered")
    }

    static let combinations: [(serverNoContext: Bool, clientNoContext: Bool, serverBits: Int, clientBits: Int)] = {
        var result: [(Bool, Bool, Int, Int)] = []
        for serverNoContext in [false, true] {
            for clientNoContext in [false, true] {
                for bits in [(9, 8), (12, 10), (15, 15)] { result.append((serverNoContext, clientNoContext, bits.0, bits.1)) }
            }
        }
        return result
    }()

    @Test func roundTripsUnderEveryParameterCombination() throws {
        for combination in Self.combinations {
            let deflater = Deflater(windowBits: combination.serverBits, level: 6, memoryLevel: 8)
            let inflater = Inflater(windowBits: max(combination.serverBits, 8))
            let messages = ["", "a", String(repeating: "round trip ", count: 500), String(repeating: "round trip ", count: 500),
                            (0..<5000).map { String(UnicodeScalar(UInt8(32 + ($0 * 7919) % 90))) }.joined()]
            for message in messages {
                var compressed = try #require(deflater.compress(ByteBuffer(string: message), allocator: self.allocator, keepContext: !combination.serverNoContext))
                compressed.writeBytes([0x00, 0x00, 0xFF, 0xFF])
                var output = ByteBuffer()
                try inflater.inflate(compressed, into: &output, limit: 1 << 20)
                #expect(String(buffer: output) == message, "\(combination)")
                if combination.serverNoContext { inflater.release() }
            }
        }
    }

    @Test func contextTakeoverShrinksRepeatedMessages() throws {
        let message = ByteBuffer(string: String(repeating: "the same message again and again ", count: 20))
        let keeping = Deflater(windowBits: 15, level: 6, memoryLevel: 8)
        let first = try #require(keeping.compress(message, allocator: self.allocator, keepContext: true))
        let second = try #require(keeping.compress(message, allocator: self.allocator, keepContext: true))
        #expect(second.readableBytes < first.readableBytes / 2)
        let fresh = Deflater(windowBits: 15, level: 6, memoryLevel: 8)
        let a = try #require(fresh.compress(message, allocator: self.allocator, keepContext: false))
        let b = try #require(fresh.compress(message, allocator: self.allocator, keepContext: false))
        #expect(a == b, "without context takeover every message compresses the same way")
    }
}
