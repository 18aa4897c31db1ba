import Foundation
@testable import MizuLive
import NIOCore
import Testing

@Suite(.timeLimit(.minutes(10))) struct MessageTests {
    @Test func encodesTheEnvelopeWithDataByteForByte() {
        func wire(_ message: Live.Message) -> String { String(buffer: message.encoded()) }
        #expect(wire(Live.Message(topic: "chat", data: Data(#"{ "b":1,  "a":[2] }"#.utf8))) == #"{"topic":"chat","data":{ "b":1,  "a":[2] }}"#)
        #expect(wire(Live.Message(topic: "t")) == #"{"topic":"t"}"#, "empty data is omitted")
        #expect(wire(Live.Message(topic: "", data: Data("1".utf8))) == #"{"data":1}"#, "empty topic is omitted")
        #expect(wire(Live.Message(topic: "q\"\\\n\u{01}\u{2028}é")) == #"{"topic":"q\"\\\n\u0001\u2028é"}"#)
        #expect(wire(try! Live.Message(topic: "x", encoding: ["k": 1])) == #"{"topic":"x","data":{"k":1}}"#)
    }

    @Test func parsesClientEnvelopes() {
        func parse(_ text: String) -> Live.Message? { Live.Message.parse(Data(text.utf8)) }
        #expect(parse(#"{"topic":"chat","data":{"text":"hi"}}"#) == Live.Message(topic: "chat", data: Data(#"{"text":"hi"}"#.utf8)))
        #expect(parse(#" { "data" : [1, 2 ,3] , "topic" : "a\u0062c" , "extra": null } "#)
            == Live.Message(topic: "abc", data: Data("[1, 2 ,3]".utf8)))
        #expect(parse(#"{"topic":"t"}"#) == Live.Message(topic: "t"))
        #expect(parse(#"{"topic":"t","data":-1.5e+3}"#)?.data == Data("-1.5e+3".utf8))
        #expect(parse(#"{"topic":"\ud83d\ude00"}"#)?.topic == "😀")
        for bad in ["", "[]", "null", "\"x\"", "{}", #"{"topic":1}"#, #"{"topic":null}"#, #"{"topic":"t","data":}"#,
                    #"{"topic":"t",}"#, #"{"topic":"t"} x"#, #"{"topic":"t","data":01}"#, #"{"topic":"t","data":tru}"#,
                    #"{"topic":"\ud800"}"#, "{\"topic\":\"a\u{01}\"}", #"{"topic":"t","data":[1,]}"#, #"{"topic":"t""#] {
            #expect(parse(bad) == nil, "\(bad)")
        }
        // Deep nesting is refused instead of recursing without bound.
        let deep = #"{"topic":"t","data":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(parse(deep) == nil)
        #expect(Live.Message.parse(Data([0x7B, 0xFF, 0x7D])) == nil, "not UTF-8")
    }
}
