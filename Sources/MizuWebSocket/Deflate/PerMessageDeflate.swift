/// Settings for permessage-deflate (RFC 7692). Every property has a default that suits a
/// server with many mostly idle connections.
public struct PerMessageDeflateConfiguration: Sendable {
    /// Always answer with server_no_context_takeover, even when the client did not ask:
    /// no compression window is kept per connection, and a broadcast compresses once for
    /// all subscribers. Default true.
    public var serverNoContextTakeover: Bool = true
    /// Ask clients to reset their window after each message (client_no_context_takeover),
    /// so the server frees its inflate state between messages. Default false: clients
    /// compress better with context, and most idle connections never inflate anything.
    public var clientNoContextTakeover: Bool = false
    /// The largest LZ77 window the server compresses with (9...15). Default 15.
    public var serverMaxWindowBits: Int = 15
    /// The largest window the server accepts from clients (8...15); smaller uses less
    /// memory per connection that sends compressed messages. Default 15.
    public var clientMaxWindowBits: Int = 15
    /// Messages shorter than this go out uncompressed: deflate cannot win on them. Default 64.
    public var minimumCompressionSize: Int = 64
    /// zlib compression level (1...9). Default 6.
    public var compressionLevel: Int = 6
    /// zlib memory level (1...9) of deflate state. Default 8.
    public var memoryLevel: Int = 8

    /// The defaults.
    public init() {}
}
