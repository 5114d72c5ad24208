import Logging
import SextantModel
import SextantPipeline
import SextantSecurity
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `bearertokenauth` extension, as in the OTel Collector contrib
/// (extension/bearertokenauthextension): `token` or `filename`, and `scheme` (default `Bearer`).
///
/// - As a server authenticator (receivers' `auth::authenticator`), a request is accepted only if its
///   `Authorization` header is exactly `<scheme> <token>`, compared in constant time.
/// - As a client authenticator (exporters' `auth::authenticator`), every request carries that header.
///
/// With `filename`, the token is the file's content without surrounding white space, read at start and
/// again whenever the file changes (checked every `reloadInterval`), so tokens can rotate.
public struct BearerTokenAuthExtensionFactory: ExtensionFactory {
    struct Config: ComponentConfig {
        var scheme = "Bearer"
        var token: Secret?
        var filename: String?
    }

    public init() {}
    public let type = "bearertokenauth"
    public let summary = "bearer token authentication: checks receivers' Authorization headers, adds them to exporters' requests"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = Config()
        c.scheme = r.string("scheme", default: c.scheme)
        c.token = r.optionalString("token").map(Secret.init)
        c.filename = r.optionalString("filename")
        switch (c.token, c.filename) {
        case (nil, nil): r.error(nil, "\(r.path) needs token or filename")
        case (.some, .some): r.error("filename", "\(r.path): set token or filename, not both")
        case (let token?, nil) where token.value.isEmpty: r.error("token", "\(r.qualified("token")) must not be empty")
        default: break
        }
        if c.scheme.contains(" ") { r.error("scheme", "\(r.qualified("scheme")) must be one word, e.g. Bearer") }
        return c
    }

    public func makeExtension(_ settings: ComponentSettings, config: any ComponentConfig) throws -> any Component {
        let c = config as! Config
        return BearerTokenAuthenticator(scheme: c.scheme, token: c.token, filename: c.filename, logger: settings.logger)
    }
}

/// The running `bearertokenauth` extension.
public final class BearerTokenAuthenticator: Component, ServerAuthenticator, ClientAuthenticator {
    private let scheme: String
    private let filename: String?
    private let logger: Logger
    private let reloadInterval: Duration
    /// The whole expected header value, `<scheme> <token>`; `nil` until a token file has been read.
    private let expected: Mutex<Secret?>
    private let watcher = Mutex<Task<Void, Never>?>(nil)

    public init(scheme: String, token: Secret?, filename: String?, logger: Logger, reloadInterval: Duration = .seconds(1)) {
        self.scheme = scheme
        self.filename = filename
        self.logger = logger
        self.reloadInterval = reloadInterval
        expected = Mutex(token.map { Secret("\(scheme) \($0.value)") })
    }

    public func start() async throws {
        guard let filename else { return }
        let loaded = try load(filename)
        let interval = reloadInterval
        watcher.withLock {
            $0 = Task { [weak self] in
                var stamp = loaded
                while !Task.isCancelled {
                    do { try await Task.sleep(for: interval) } catch { return }
                    guard let self else { return }
                    let now = FileStamp(filename)
                    guard now != stamp else { continue }
                    do {
                        stamp = try self.load(filename)
                        self.logger.info("bearer token file changed; token reloaded", metadata: ["filename": "\(filename)"])
                    } catch {
                        // Keep the previous token: a rotation in progress may leave the file briefly empty.
                        stamp = now
                        self.logger.warning("cannot reload the bearer token file; keeping the previous token", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
    }

    public func shutdown() async {
        guard let task = watcher.withLock({ $0 }) else { return }
        task.cancel()
        await task.value
    }

    /// Reads the token file; returns the stamp it was read at.
    @discardableResult
    private func load(_ path: String) throws -> FileStamp {
        let stamp = FileStamp(path)
        let bytes: [UInt8]
        do {
            bytes = try ReadFile.bytes(path, limit: 64 << 10)
        } catch {
            throw AuthSetupError(description: "cannot read bearer token file '\(path)': \(error)")
        }
        let token = String(decoding: bytes, as: UTF8.self).trimmingSpaces
        if token.isEmpty { throw AuthSetupError(description: "bearer token file '\(path)' is empty") }
        expected.withLock { $0 = Secret("\(scheme) \(token)") }
        return stamp
    }

    public func authenticate(_ header: (String) -> String?) -> Bool {
        guard let expected = expected.withLock({ $0 }), let given = header("authorization") else { return false }
        return ConstantTime.equals(Array(given.utf8), Array(expected.value.utf8))
    }

    public func requestHeaders() -> [(String, String)] {
        guard let expected = expected.withLock({ $0 }) else { return [] }
        return [("authorization", expected.value)]
    }
}

/// Identity and modification time of a file, to notice replacement (rename, as Kubernetes secrets
/// rotate) and rewrites alike.
struct FileStamp: Equatable, Sendable {
    var inode: UInt64 = 0
    var size: Int64 = -1
    var mtimeSeconds: Int = 0
    var mtimeNanos: Int = 0

    init(_ path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return }
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        #if canImport(Darwin)
        mtimeSeconds = Int(st.st_mtimespec.tv_sec)
        mtimeNanos = Int(st.st_mtimespec.tv_nsec)
        #else
        mtimeSeconds = Int(st.st_mtim.tv_sec)
        mtimeNanos = Int(st.st_mtim.tv_nsec)
        #endif
    }
}

/// Small whole-file reads with POSIX calls (no Foundation).
enum ReadFile {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func bytes(_ path: String, limit: Int) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Failure(description: String(cString: strerror(errno))) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: String(cString: strerror(errno)))
            }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit { throw Failure(description: "larger than \(limit) bytes") }
        }
    }
}

/// `basicauth` extension, client side (OTel contrib extension/basicauthextension's `client_auth`):
/// exporters naming it send `Authorization: Basic base64(username:password)` (RFC 7617).
/// The server side (`htpasswd`) is not available.
public struct BasicAuthExtensionFactory: ExtensionFactory {
    struct Config: ComponentConfig {
        var header = Secret("")
    }

    public init() {}
    public let type = "basicauth"
    public let summary = "HTTP Basic credentials (client_auth) added to exporters' requests"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = Config()
        if r.has("htpasswd") {
            _ = r.raw("htpasswd")
            r.error("htpasswd", "\(r.qualified("htpasswd")): checking Basic credentials on receivers is not supported; use bearertokenauth")
        }
        guard r.has("client_auth") else {
            if !r.keys.contains("htpasswd") { r.error(nil, "\(r.path) needs client_auth: {username, password}") }
            return c
        }
        var a = r.section("client_auth")
        let username = a.optionalString("username") ?? ""
        let password = a.optionalString("password") ?? ""
        if username.isEmpty { a.error("username", "\(a.qualified("username")) is required") }
        if username.contains(":") { a.error("username", "\(a.qualified("username")) cannot contain ':' (RFC 7617 §2)") }
        a.finish()
        c.header = Secret("Basic " + Base64.encode(Array("\(username):\(password)".utf8)))
        return c
    }

    public func makeExtension(_ settings: ComponentSettings, config: any ComponentConfig) throws -> any Component {
        BasicAuthenticator(header: (config as! Config).header)
    }
}

/// The running `basicauth` extension (client side).
public struct BasicAuthenticator: Component, ClientAuthenticator {
    let header: Secret
    public func start() async throws {}
    public func shutdown() async {}
    public func requestHeaders() -> [(String, String)] { [("authorization", header.value)] }
}
