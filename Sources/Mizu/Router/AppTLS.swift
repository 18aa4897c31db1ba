#if TLS
import NIOSSL

extension App {
    /// Go's `ListenTLS`: serves https:// (and wss://) on `address` with the PEM certificate
    /// chain and private key in these files, until SIGINT or SIGTERM. Only with the package
    /// trait `TLS` (`swift build --traits TLS`).
    public func listenTLS(_ address: String, certificateFile: String, keyFile: String) async throws {
        var configuration = self.configuration
        configuration.tls = try Self.tlsConfiguration(certificateFile: certificateFile, keyFile: keyFile)
        try await self.listen(address, configuration: configuration)
    }

    /// A server TLS configuration from PEM files: a certificate chain (leaf first) and its key.
    public static func tlsConfiguration(certificateFile: String, keyFile: String) throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
    }
}
#endif
