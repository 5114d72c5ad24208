import ArgumentParser
import SextantProxy

/// `sextant ca`: a local mesh root CA and workload certificates for `sextant proxy --cert/--key/--ca`.
struct CACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Generate a mesh root CA and SPIFFE workload certificates for proxy-to-proxy mTLS.",
        discussion: """
            Writes DIR/root-cert.pem and, per identity, DIR/<service account>/{cert-chain.pem,key.pem,root-cert.pem}
            (Istio's file names). Use them as `sextant proxy --cert .../cert-chain.pem --key .../key.pem --ca DIR/root-cert.pem`.
            """)

    @Option(name: .long, help: "Output directory (created if needed; existing files are replaced).")
    var out: String

    @Option(name: .long, help: "A workload identity, spiffe://cluster.local/ns/NS/sa/SA; repeat.")
    var identity: [String]

    func validate() throws {
        guard !identity.isEmpty else { throw ValidationError("give at least one --identity") }
        for i in identity where SPIFFEIdentity(i) == nil {
            throw ValidationError("--identity must be a SPIFFE ID such as spiffe://cluster.local/ns/default/sa/bookinfo-productpage, found '\(i)'")
        }
    }

    func run() throws {
        let dirs = try MeshCertificateAuthority.generate(directory: out, identities: identity)
        print("\(out)/root-cert.pem")
        for i in identity { print("\(i) \(dirs[i] ?? "")") }
    }
}
