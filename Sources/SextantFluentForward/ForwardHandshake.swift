/// The shared-key handshake of Forward Protocol v1 ("Handshake Messages"): the server sends HELO, the
/// client answers PING, the server closes with PONG. Digests are lowercase-hex SHA-512 of
/// `shared_key_salt + hostname + nonce + shared_key`. User authentication (username/password) is not
/// offered by our server and not supported by our client.
public enum ForwardHandshake {
    /// `["HELO", {"nonce": ..., "auth": ..., "keepalive": ...}]`
    public struct Helo: Sendable, Equatable {
        public var nonce: [UInt8]
        /// The salt for user authentication; empty when the server does not require it.
        public var auth: [UInt8]
        public var keepalive: Bool

        public init(nonce: [UInt8], auth: [UInt8] = [], keepalive: Bool = true) {
            self.nonce = nonce
            self.auth = auth
            self.keepalive = keepalive
        }
    }

    /// `["PING", client_hostname, shared_key_salt, digest, username, password_digest]`
    public struct Ping: Sendable, Equatable {
        public var hostname: String
        public var sharedKeySalt: [UInt8]
        public var digest: String
        public var username: String
        public var passwordDigest: String

        public init(hostname: String, sharedKeySalt: [UInt8], digest: String, username: String = "", passwordDigest: String = "") {
            self.hostname = hostname
            self.sharedKeySalt = sharedKeySalt
            self.digest = digest
            self.username = username
            self.passwordDigest = passwordDigest
        }
    }

    /// `["PONG", auth_result, reason, server_hostname, digest]`
    public struct Pong: Sendable, Equatable {
        public var authenticated: Bool
        public var reason: String
        public var hostname: String
        public var digest: String

        public init(authenticated: Bool, reason: String, hostname: String, digest: String) {
            self.authenticated = authenticated
            self.reason = reason
            self.hostname = hostname
            self.digest = digest
        }
    }

    /// `sha512_hex(shared_key_salt + hostname + nonce + shared_key)`, used by PING and PONG alike.
    public static func digest(salt: [UInt8], hostname: String, nonce: [UInt8], sharedKey: String) -> String {
        SHA512.hexDigest([salt, Array(hostname.utf8), nonce, Array(sharedKey.utf8)])
    }

    public static func encode(_ m: Helo) -> [UInt8] {
        var w = MessagePackWriter()
        w.writeArrayHeader(2)
        w.write("HELO")
        w.writeMapHeader(3)
        w.write("nonce")
        w.write(binary: m.nonce)
        w.write("auth")
        w.write(binary: m.auth)
        w.write("keepalive")
        w.write(m.keepalive)
        return w.bytes
    }

    public static func encode(_ m: Ping) -> [UInt8] {
        var w = MessagePackWriter()
        w.writeArrayHeader(6)
        w.write("PING")
        w.write(m.hostname)
        w.write(binary: m.sharedKeySalt)
        w.write(m.digest)
        w.write(m.username)
        w.write(m.passwordDigest)
        return w.bytes
    }

    public static func encode(_ m: Pong) -> [UInt8] {
        var w = MessagePackWriter()
        w.writeArrayHeader(5)
        w.write("PONG")
        w.write(m.authenticated)
        w.write(m.reason)
        w.write(m.hostname)
        w.write(m.digest)
        return w.bytes
    }

    static func elements(_ frame: [UInt8], _ name: String, count: ClosedRange<Int>) throws -> [MessagePackValue] {
        guard case .array(let a) = try MessagePack.decode(frame, maxDepth: 4), let first = a.first, first.text == name,
            count.contains(a.count)
        else {
            throw MessagePackError(.unexpectedType, at: 0, "expected a \(name) message [\"\(name)\", ...] of \(count) elements")
        }
        return a
    }

    public static func decodeHelo(_ frame: [UInt8]) throws -> Helo {
        let a = try elements(frame, "HELO", count: 2...2)
        guard case .map = a[1], let nonce = a[1]["nonce"]?.bytes else {
            throw MessagePackError(.unexpectedType, at: 0, "HELO options must be a map with a nonce")
        }
        var keepalive = true
        if case .bool(let k)? = a[1]["keepalive"] { keepalive = k }
        return Helo(nonce: nonce, auth: a[1]["auth"]?.bytes ?? [], keepalive: keepalive)
    }

    public static func decodePing(_ frame: [UInt8]) throws -> Ping {
        let a = try elements(frame, "PING", count: 4...6)
        guard let host = a[1].text, let salt = a[2].bytes, let digest = a[3].text else {
            throw MessagePackError(.unexpectedType, at: 0, "PING must be [\"PING\", hostname, salt, digest, username, password]")
        }
        return Ping(
            hostname: host, sharedKeySalt: salt, digest: digest, username: a.count > 4 ? a[4].text ?? "" : "",
            passwordDigest: a.count > 5 ? a[5].text ?? "" : "")
    }

    public static func decodePong(_ frame: [UInt8]) throws -> Pong {
        let a = try elements(frame, "PONG", count: 5...5)
        guard case .bool(let ok) = a[1], let reason = a[2].text, let host = a[3].text, let digest = a[4].text else {
            throw MessagePackError(.unexpectedType, at: 0, "PONG must be [\"PONG\", bool, reason, hostname, digest]")
        }
        return Pong(authenticated: ok, reason: reason, hostname: host, digest: digest)
    }

    /// The server's check of a PING (as Fluentd's `in_forward` does it): the client must not claim the
    /// server's own hostname, and its digest must match the shared key. Returns the PONG to send.
    public static func answer(_ ping: Ping, nonce: [UInt8], sharedKey: String, selfHostname: String) -> Pong {
        func refuse(_ reason: String) -> Pong { Pong(authenticated: false, reason: reason, hostname: selfHostname, digest: "") }
        if ping.hostname == selfHostname {
            return refuse("same hostname between input and output: invalid configuration")
        }
        let expected = digest(salt: ping.sharedKeySalt, hostname: ping.hostname, nonce: nonce, sharedKey: sharedKey)
        guard constantTimeEqual(Array(expected.utf8), Array(ping.digest.utf8)) else {
            return refuse("shared_key mismatch")
        }
        return Pong(
            authenticated: true, reason: "", hostname: selfHostname,
            digest: digest(salt: ping.sharedKeySalt, hostname: selfHostname, nonce: nonce, sharedKey: sharedKey))
    }

    /// The client's check of a PONG; `nil` when the server proved it knows the shared key.
    public static func verify(_ pong: Pong, salt: [UInt8], nonce: [UInt8], sharedKey: String, selfHostname: String) -> String? {
        guard pong.authenticated else { return "authentication refused by the server: \(pong.reason)" }
        if pong.hostname == selfHostname { return "same hostname between input and output: invalid configuration" }
        let expected = digest(salt: salt, hostname: pong.hostname, nonce: nonce, sharedKey: sharedKey)
        guard constantTimeEqual(Array(expected.utf8), Array(pong.digest.utf8)) else {
            return "the server's shared key digest does not match"
        }
        return nil
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
