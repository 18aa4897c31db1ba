import Foundation
import NIOHTTP1

/// A client's opening handshake as values (RFC 6455 section 4.1): the request it sends, and the
/// checks of the server's answer, which fail the connection on anything the request did not
/// ask for. No I/O: ``ClientHandshakeHandler`` sends and receives.
struct WebSocketClientHandshake {
    /// Where to connect, from a `ws://` URL.
    struct Target: Equatable {
        var host: String
        var port: Int
        /// Path and query, as sent in the request line.
        var requestTarget: String
        var secure: Bool

        /// `ws://host[:port][/path][?query]` (`wss://` too; whether TLS is available is the caller's concern).
        init(url text: String) throws(WebSocketClientError) {
            guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
                scheme == "ws" || scheme == "wss", var host = components.host, !host.isEmpty,
                components.fragment == nil
            else { throw .invalidURL(text) }
            // An IPv6 literal comes bracketed on some platforms; the socket wants it bare.
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw .invalidURL(text) }
            self.secure = scheme == "wss"
            self.host = host
            self.port = components.port ?? (self.secure ? 443 : 80)
            guard (1...65535).contains(self.port) else { throw .invalidURL(text) }
            let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
            self.requestTarget = path + (components.percentEncodedQuery.map { "?" + $0 } ?? "")
        }

        /// The `Host` header: the port only when it is not the scheme's default.
        var hostHeader: String {
            let host = self.host.contains(":") ? "[\(self.host)]" : self.host
            return self.port == (self.secure ? 443 : 80) ? host : "\(host):\(self.port)"
        }
    }

    let target: Target
    /// 16 random bytes, base64 (section 4.1: new for every connection).
    let key: String
    let subprotocols: [String]
    let compression: PerMessageDeflateConfiguration?
    let extraHeaders: [(String, String)]

    init(target: Target, subprotocols: [String], compression: PerMessageDeflateConfiguration?, extraHeaders: [(String, String)]) {
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &random) }
        self.target = target
        self.key = Data(bytes).base64EncodedString()
        self.subprotocols = subprotocols
        self.compression = compression
        self.extraHeaders = extraHeaders
    }

    var requestHead: HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: self.target.hostHeader)
        headers.add(name: "Upgrade", value: "websocket")
        headers.add(name: "Connection", value: "Upgrade")
        headers.add(name: "Sec-WebSocket-Key", value: self.key)
        headers.add(name: "Sec-WebSocket-Version", value: "13")
        if !self.subprotocols.isEmpty { headers.add(name: "Sec-WebSocket-Protocol", value: self.subprotocols.joined(separator: ", ")) }
        if let offer = self.deflateOffer { headers.add(name: "Sec-WebSocket-Extensions", value: offer) }
        for (name, value) in self.extraHeaders { headers.add(name: name, value: value) }
        return HTTPRequestHead(version: .http1_1, method: .GET, uri: self.target.requestTarget, headers: headers)
    }

    /// The request on the wire.
    var requestText: String {
        let head = self.requestHead
        var text = "GET \(head.uri) HTTP/1.1\r\n"
        for (name, value) in head.headers { text += "\(name): \(value)\r\n" }
        return text + "\r\n"
    }

    /// Header names must be tokens and values free of CR, LF and NUL (RFC 9110 section 5),
    /// or a caller's header could smuggle another header, or end the request early.
    static func checkHeaders(_ headers: [(String, String)]) throws(WebSocketClientError) {
        let separators = Set("()<>@,;:\\\"/[]?={} \t".unicodeScalars)
        for (name, value) in headers {
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 && !separators.contains($0) }),
                !value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" })
            else { throw .invalidHeader(name) }
        }
    }

    /// RFC 7692 section 7.1: the client says it can take a limited window
    /// (`client_max_window_bits`), and asks for what its configuration asks of the server.
    var deflateOffer: String? {
        guard let compression = self.compression else { return nil }
        var parts = ["permessage-deflate"]
        if compression.serverNoContextTakeover { parts.append("server_no_context_takeover") }
        if compression.clientNoContextTakeover { parts.append("client_no_context_takeover") }
        if compression.serverMaxWindowBits < 15 { parts.append("server_max_window_bits=\(max(8, compression.serverMaxWindowBits))") }
        parts.append(compression.clientMaxWindowBits < 15 ? "client_max_window_bits=\(max(9, compression.clientMaxWindowBits))" : "client_max_window_bits")
        return parts.joined(separator: "; ")
    }

    /// What a valid 101 agreed to.
    struct Agreement: Equatable {
        var subprotocol: String?
        var deflate: NegotiatedDeflate?
    }

    /// Checks the server's 101 (section 4.2.2 and 4.1, steps 1-6 of the client's checks).
    func validate(_ head: HTTPResponseHead) throws(WebSocketClientError) -> Agreement {
        let headers = head.headers
        guard head.status == .switchingProtocols else {
            throw .invalidHandshake("status \(head.status.code)")
        }
        guard headers[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "websocket" }) else {
            throw .invalidHandshake("no Upgrade: websocket")
        }
        guard headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" }) else {
            throw .invalidHandshake("no Connection: Upgrade")
        }
        let expected = WebSocketHandshake.acceptValue(forKey: self.key)
        guard headers["sec-websocket-accept"].count == 1, headers.first(name: "sec-websocket-accept")?.trimmingHTTPWhitespace() == expected else {
            throw .invalidHandshake("wrong Sec-WebSocket-Accept")
        }
        let protocols = headers[canonicalForm: "sec-websocket-protocol"]
        guard protocols.count <= 1, protocols.allSatisfy({ self.subprotocols.contains(String($0)) }) else {
            throw .invalidHandshake("a subprotocol that was not offered")
        }
        var agreement = Agreement(subprotocol: protocols.first.map(String.init), deflate: nil)
        if headers.contains(name: "sec-websocket-extensions") {
            guard let extensions = ExtensionHeaderParser.parse(headers["sec-websocket-extensions"]) else {
                throw .invalidHandshake("malformed Sec-WebSocket-Extensions")
            }
            agreement.deflate = try self.acceptedDeflate(extensions)
        }
        return agreement
    }

    /// The server's permessage-deflate response (RFC 7692 sections 5 and 7.1): at most one, only
    /// if offered, only parameters it may send, each once.
    private func acceptedDeflate(_ extensions: [ExtensionOffer]) throws(WebSocketClientError) -> NegotiatedDeflate? {
        guard !extensions.isEmpty else { return nil }
        guard let compression = self.compression, extensions.count == 1, let response = extensions.first,
            response.name == "permessage-deflate"
        else { throw .invalidHandshake("an extension that was not offered") }
        var result = NegotiatedDeflate(
            serverNoContextTakeover: false, clientNoContextTakeover: compression.clientNoContextTakeover,
            serverMaxWindowBits: 15, clientMaxWindowBits: compression.clientMaxWindowBits < 15 ? max(9, compression.clientMaxWindowBits) : 15)
        var seen = Set<String>()
        for (name, value) in response.parameters {
            guard seen.insert(name).inserted else { throw .invalidHandshake("\(name) twice") }
            switch (name, value) {
            case ("server_no_context_takeover", nil): result.serverNoContextTakeover = true
            case ("client_no_context_takeover", nil): result.clientNoContextTakeover = true
            case ("server_max_window_bits", let value?):
                guard let bits = Self.windowBits(value), compression.serverMaxWindowBits >= 15 || bits <= compression.serverMaxWindowBits else {
                    throw .invalidHandshake("server_max_window_bits=\(value)")
                }
                result.serverMaxWindowBits = bits
            case ("client_max_window_bits", let value?):
                guard let bits = Self.windowBits(value) else { throw .invalidHandshake("client_max_window_bits=\(value)") }
                result.clientMaxWindowBits = min(result.clientMaxWindowBits, bits)
            default:
                throw .invalidHandshake("permessage-deflate parameter \(name)")
            }
        }
        // server_no_context_takeover asked for and not granted is allowed (section 7.1.1.1):
        // the server then keeps its window, and so does our inflater.
        return result
    }

    private static func windowBits(_ value: String) -> Int? { NegotiatedDeflate.windowBits(value) }
}
