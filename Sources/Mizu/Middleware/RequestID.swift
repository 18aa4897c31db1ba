extension Middlewares {
    /// Gives every request an ID: the client's `header` when it is a sane one (1 to 128
    /// visible ASCII characters), else 128 random bits in hex. The ID is set on the response
    /// and in `c.values[.requestID]`, and the request logger logs it.
    public static func requestID(header: String = "x-request-id") -> Middleware {
        { next in
            { ctx in
                let offered = ctx.request.header(header)
                let id: String
                if let offered, (1...128).contains(offered.utf8.count), offered.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
                    id = offered
                } else {
                    var generator = BufferedSystemRandom()
                    id = [generator.next() as UInt64, generator.next() as UInt64]
                        .map { let digits = String($0, radix: 16); return String(repeating: "0", count: 16 - digits.count) + digits }
                        .joined()
                }
                ctx.values[.requestID] = id
                ctx.writer.setHeader(header, id)
                try await next(ctx)
            }
        }
    }
}
