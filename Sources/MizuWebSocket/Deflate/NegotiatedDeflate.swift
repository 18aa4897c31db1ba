/// What one connection agreed to.
struct NegotiatedDeflate: Equatable, Sendable {
    var serverNoContextTakeover: Bool
    var clientNoContextTakeover: Bool
    /// The window the server may use; 8 means the server never compresses (see below).
    var serverMaxWindowBits: Int
    var clientMaxWindowBits: Int

    /// Whether the server compresses at all (not when limited to a window of 8).
    var serverCompresses: Bool { self.sending(.server).compresses }

    /// One direction's parameters: the sender's window and whether it keeps its context.
    struct Direction: Equatable {
        var windowBits: Int
        var noContextTakeover: Bool
        /// zlib cannot deflate with a raw window of 8 (it silently uses 9): a side limited to 8
        /// sends uncompressed messages, which RFC 7692 always allows.
        var compresses: Bool { self.windowBits >= 9 }
    }

    /// What `role` sends (RFC 7692 section 7.1: the server's parameters for the server's messages).
    func sending(_ role: WebSocketRole) -> Direction {
        switch role {
        case .server: return Direction(windowBits: self.serverMaxWindowBits, noContextTakeover: self.serverNoContextTakeover)
        case .client: return Direction(windowBits: self.clientMaxWindowBits, noContextTakeover: self.clientNoContextTakeover)
        }
    }

    /// What `role` receives: the other side's sending parameters.
    func receiving(_ role: WebSocketRole) -> Direction {
        self.sending(role == .server ? .client : .server)
    }

    /// The `Sec-WebSocket-Extensions` response value.
    var responseHeader: String {
        var parts = ["permessage-deflate"]
        if self.serverNoContextTakeover { parts.append("server_no_context_takeover") }
        if self.clientNoContextTakeover { parts.append("client_no_context_takeover") }
        if self.serverMaxWindowBits < 15 { parts.append("server_max_window_bits=\(self.serverMaxWindowBits)") }
        if self.clientMaxWindowBits < 15 { parts.append("client_max_window_bits=\(self.clientMaxWindowBits)") }
        return parts.joined(separator: "; ")
    }

    /// Picks the first acceptable permessage-deflate offer (RFC 7692 section 5); offers
    /// with unknown, repeated or invalid parameters are declined.
    static func negotiate(offers: [ExtensionOffer], configuration: PerMessageDeflateConfiguration) -> NegotiatedDeflate? {
        for offer in offers where offer.name == "permessage-deflate" {
            if let accepted = self.accept(offer, configuration: configuration) { return accepted }
        }
        return nil
    }

    private static func accept(_ offer: ExtensionOffer, configuration: PerMessageDeflateConfiguration) -> NegotiatedDeflate? {
        var seen = Set<String>()
        var result = NegotiatedDeflate(
            serverNoContextTakeover: configuration.serverNoContextTakeover,
            clientNoContextTakeover: configuration.clientNoContextTakeover,
            serverMaxWindowBits: min(max(configuration.serverMaxWindowBits, 9), 15),
            clientMaxWindowBits: 15)
        var clientWindowOffered = false
        for (name, value) in offer.parameters {
            guard seen.insert(name).inserted else { return nil }
            switch name {
            case "server_no_context_takeover":
                guard value == nil else { return nil }
                result.serverNoContextTakeover = true
            case "client_no_context_takeover":
                guard value == nil else { return nil }
                result.clientNoContextTakeover = true
            case "server_max_window_bits":
                guard let bits = value.flatMap(Self.windowBits) else { return nil }
                result.serverMaxWindowBits = min(bits, result.serverMaxWindowBits)
            case "client_max_window_bits":
                clientWindowOffered = true
                if let value {
                    guard let bits = Self.windowBits(value) else { return nil }
                    result.clientMaxWindowBits = bits
                }
            default:
                return nil
            }
        }
        // The server may only limit the client's window when the client said it can be limited.
        if clientWindowOffered {
            result.clientMaxWindowBits = min(result.clientMaxWindowBits, max(8, min(configuration.clientMaxWindowBits, 15)))
        }
        return result
    }

    /// 8...15, as a decimal without leading zeros (RFC 7692 section 7.1.2).
    static func windowBits(_ value: String) -> Int? {
        guard let bits = Int(value), (8...15).contains(bits), String(bits) == value else { return nil }
        return bits
    }
}
