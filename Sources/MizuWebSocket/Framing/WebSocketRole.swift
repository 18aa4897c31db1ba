/// Which end of a connection this is: the rules of masking (RFC 6455 section 5.1), who closes the
/// TCP connection first (section 7.1.1), and which permessage-deflate parameters apply to what
/// each side sends (RFC 7692 section 7.1) follow from it.
enum WebSocketRole: Sendable, Equatable {
    case server
    case client
}
