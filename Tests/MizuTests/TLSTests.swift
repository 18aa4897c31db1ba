#if TLS
import Foundation
import Mizu
import MizuTestSupport
import Testing

/// https:// with a self-signed certificate made by openssl for the test: a real handshake.
@Suite(.timeLimit(.minutes(10))) struct TLSTests {
    @Test func anAppServesHTTPSAndTheRequestKnowsItIsSecure() async throws {
        let (certificate, key) = try makeSelfSignedCertificate()
        var configuration = HTTPServerConfiguration()
        configuration.tls = try App.tlsConfiguration(certificateFile: certificate, keyFile: key)
        configuration.requestHeadTimeout = Patience.scaled(.seconds(1))  // the test client's handshake must beat it
        let app = App(configuration: configuration, logsRequests: false)
        app.get("/hello") { c in try await c.text(.ok, "secure: \(c.request.isSecure)") }
        try await withServer(app) { (port: Int) async throws in
            let client = try await RawClient.connect(port: port, tls: .init(certificateFile: certificate))
            try await client.send("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let response = try await client.readResponse()
            #expect(response.status == 200 && response.text == "secure: true")
            await client.close()
            // Plain HTTP to a TLS port is no handshake: it is not answered as HTTP, and the
            // connection ends by the head deadline (the TLS layer would wait for 8 KiB more).
            let plain = try await RawClient.connect(port: port)
            try await plain.send("GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let answer = try await plain.waitForClose(timeout: .seconds(4))
            #expect(!String(buffer: answer).contains("HTTP/1.1 200"))
            // A client that connects and stalls mid-handshake is closed the same way.
            let stalled = try await RawClient.connect(port: port)
            try await stalled.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            _ = try await stalled.waitForClose(timeout: .seconds(4))
        }
    }
}
#endif
