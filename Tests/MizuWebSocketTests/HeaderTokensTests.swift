@testable import MizuWebSocket
import NIOHTTP1
import Testing

/// The in-place token scan of the handshake's Upgrade and Connection headers.
@Suite struct HeaderTokensTests {
    @Test(arguments: [
        (["Connection": "Upgrade"], true),
        (["connection": "keep-alive, Upgrade"], true),
        (["CONNECTION": " keep-alive ,\tuPgRaDe\t"], true),
        (["Connection": "keep-alive,,upgrade,"], true),
        (["Connection": "upgrades"], false),
        (["Connection": "up grade"], false),
        (["Connection": "\"upgrade\""], false),
        (["Connection": ""], false),
        (["Connection": ","], false),
        (["Upgrade": "upgrade"], false),
        (["Connectio": "upgrade"], false),
    ])
    func listsFindsTheTokenAsAnItem(_ header: [String: String], _ listed: Bool) {
        let headers = HTTPHeaders(header.map { ($0.key, $0.value) })
        #expect(headers.lists("connection", token: "upgrade") == listed, "\(header)")
    }

    @Test func everyLineOfTheHeaderCounts() {
        let headers = HTTPHeaders([("Connection", "keep-alive"), ("Host", "x"), ("connection", "Upgrade")])
        #expect(headers.lists("connection", token: "upgrade"))
        #expect(!headers.lists("connection", token: "close"))
    }

    /// The scan agrees with the list NIO builds, on every value made of a few pieces.
    @Test func theScanAgreesWithNIOsList() {
        let pieces = ["upgrade", "Upgrade", " ", ",", "\t", "x", "keep-alive", "upgradex"]
        func values(_ depth: Int) -> [String] {
            depth == 0 ? [""] : values(depth - 1).flatMap { prefix in pieces.map { prefix + $0 } }
        }
        for value in values(4) {
            let headers = HTTPHeaders([("Connection", value)])
            let nio = headers[canonicalForm: "connection"].contains { $0.trimmingCharacters(in: .init(charactersIn: " \t")).lowercased() == "upgrade" }
            #expect(headers.lists("connection", token: "upgrade") == nio, "\(value.debugDescription)")
        }
    }
}
