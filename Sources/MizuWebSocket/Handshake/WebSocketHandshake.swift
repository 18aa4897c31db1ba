import Foundation
import MizuHTTP
import NIOHTTP1

/// A valid opening handshake and what was negotiated.
public struct WebSocketHandshake: Sendable {
    /// `Sec-WebSocket-Accept` (RFC 6455 section 4.2.2).
    public let accept: String
    /// The chosen subprotocol, if any.
    public let subprotocol: String?
    let deflate: NegotiatedDeflate?

    /// Whether permessage-deflate was negotiated.
    public var isCompressed: Bool { self.deflate != nil }

    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// Checks `request` against RFC 6455 section 4.2.1 and negotiates extensions.
    public static func validate(_ request: Request, configuration: WebSocketConfiguration) throws(WebSocketHandshakeError) -> WebSocketHandshake {
        try Self.checkUpgradeRequest(request)
        return try Self.negotiate(request, configuration: configuration)
    }

    /// Whether `request` asks for a WebSocket at all: GET (405), HTTP/1.1, `Upgrade: websocket`
    /// and `Connection: upgrade` (400), version 13 (426), no body (400). An endpoint runs this
    /// before any origin or authentication work, so a plain GET costs nothing more (as in Go).
    public static func checkUpgradeRequest(_ request: Request) throws(WebSocketHandshakeError) {
        let headers = request.headers
        guard request.method == .GET else {
            throw WebSocketHandshakeError(status: .methodNotAllowed, reason: "a WebSocket handshake must use GET", headers: [("Allow", "GET")])
        }
        guard headers.lists("upgrade", token: "websocket") else {
            throw WebSocketHandshakeError(status: .badRequest, reason: "not a WebSocket handshake: Upgrade must be websocket", headers: [])
        }
        guard headers.lists("connection", token: "upgrade") else {
            throw WebSocketHandshakeError(status: .badRequest, reason: "Connection header must contain upgrade", headers: [])
        }
        guard request.version.major == 1 && request.version.minor >= 1 else {
            throw WebSocketHandshakeError(status: .badRequest, reason: "a WebSocket handshake needs HTTP/1.1", headers: [])
        }
        let versions = headers["sec-websocket-version"]
        guard versions.count == 1, versions[0].trimmingHTTPWhitespace() == "13" else {
            throw WebSocketHandshakeError(
                status: .upgradeRequired, reason: "unsupported WebSocket version", headers: [("Sec-WebSocket-Version", "13")])
        }
        // A handshake has no content; one that carries some is not a handshake, and its body
        // must not be held for the life of the connection.
        if request.body.readableBytes > 0 || headers.contains(name: "transfer-encoding")
            || headers.first(name: "content-length").map({ $0.trimmingHTTPWhitespace() != "0" }) == true
        {
            throw WebSocketHandshakeError(status: .badRequest, reason: "a WebSocket handshake carries no body", headers: [])
        }
    }

    /// The key check and negotiation, for a request that passed ``checkUpgradeRequest(_:)``.
    public static func negotiate(_ request: Request, configuration: WebSocketConfiguration) throws(WebSocketHandshakeError) -> WebSocketHandshake {
        let headers = request.headers
        let keys = headers["sec-websocket-key"]
        guard keys.count == 1, let key = keys.first?.trimmingHTTPWhitespace(),
            let decoded = Data(base64Encoded: key), decoded.count == 16
        else {
            throw WebSocketHandshakeError(status: .badRequest, reason: "Sec-WebSocket-Key must be base64 of 16 bytes", headers: [])
        }
        let accept = Self.acceptValue(forKey: key)
        let offeredProtocols = headers[canonicalForm: "sec-websocket-protocol"].map { $0.trimmingHTTPWhitespace() }
        let subprotocol = offeredProtocols.first { configuration.subprotocols.contains($0) }
        var deflate: NegotiatedDeflate?
        if let compression = configuration.compression, headers.contains(name: "sec-websocket-extensions"),
            // Raw values: a quoted parameter may itself contain a comma.
            let offers = ExtensionHeaderParser.parse(headers["sec-websocket-extensions"])
        {
            deflate = NegotiatedDeflate.negotiate(offers: offers, configuration: compression)
        }
        return WebSocketHandshake(accept: accept, subprotocol: subprotocol, deflate: deflate)
    }

    /// The 101 response headers.
    var responseHeaders: [(String, String)] {
        var headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", self.accept)]
        if let subprotocol { headers.append(("Sec-WebSocket-Protocol", subprotocol)) }
        if let deflate { headers.append(("Sec-WebSocket-Extensions", deflate.responseHeader)) }
        return headers
    }
}
