import SextantPipeline

/// `security.istio.io` `PeerAuthentication`: whether the selected workloads' inbound side accepts plain
/// text, mutual TLS, or both. Istio's precedence: a workload-specific resource (non-empty `selector`) over
/// the namespace's (no selector) over the mesh's (no selector, root namespace `istio-system`); within the
/// chosen one, `portLevelMtls` for the workload port over the resource's `mtls`; `UNSET` inherits from the
/// next level. With nothing set the mode is `PERMISSIVE`, Istio's default.
public struct PeerAuthentication: Sendable {
    public enum Mode: String, Sendable, CaseIterable {
        case unset = "UNSET"
        /// Plain text only: the inbound side never terminates TLS.
        case disable = "DISABLE"
        /// Both: a TLS ClientHello gets mutual TLS, anything else goes on as plain text.
        case permissive = "PERMISSIVE"
        /// Mutual TLS only: plain-text connections are closed.
        case strict = "STRICT"
    }

    public var meta: ObjectMeta
    /// `selector.matchLabels`; empty selects the whole namespace (the mesh, in the root namespace).
    public var selector: [String: String]
    public var mode: Mode
    /// `portLevelMtls`: workload (target) port → mode. Istio honours it only with a selector.
    public var portLevelMtls: [Int: Mode]

    static func parse(_ spec: inout ConfigReader, meta: ObjectMeta) -> PeerAuthentication {
        var selector: [String: String] = [:]
        if var s = spec.optionalSection("selector") {
            selector = s.labels("matchLabels")
            s.finish()
        }
        var mode = Mode.unset
        if var m = spec.optionalSection("mtls") {
            mode = Mode(rawValue: m.choice("mode", Mode.allCases.map(\.rawValue), default: "UNSET")) ?? .unset
            m.finish()
        }
        var ports: [Int: Mode] = [:]
        if let node = spec.raw("portLevelMtls") {
            var r = ConfigReader(node, path: spec.qualified("portLevelMtls"), diagnostics: spec.diagnostics)
            for key in r.keys {
                var m = r.section(key)
                let v = Mode(rawValue: m.choice("mode", Mode.allCases.map(\.rawValue), default: "UNSET")) ?? .unset
                m.finish()
                guard let port = Int(key), (1...65535).contains(port) else {
                    r.error(key, "\(r.qualified(key)): '\(key)' is not a port number")
                    continue
                }
                ports[port] = v
            }
            r.finish()
            if !ports.isEmpty && selector.isEmpty {
                spec.warning("portLevelMtls", "\(spec.qualified("portLevelMtls")) needs a selector (Istio ignores it without one); ignored")
                ports = [:]
            }
        }
        _ = spec.raw("targetRef")
        _ = spec.raw("targetRefs")
        spec.finish()
        return PeerAuthentication(meta: meta, selector: selector, mode: mode, portLevelMtls: ports)
    }

    /// The effective mode for a workload's inbound `port`, from the resources that exist (any namespace).
    public static func effectiveMode(_ all: [PeerAuthentication], identity: ProxyIdentity, port: Int?) -> Mode {
        let workload = all.filter {
            $0.meta.namespace == identity.namespace && !$0.selector.isEmpty
                && $0.selector.allSatisfy { identity.labels[$0.key] == $0.value }
        }
        // Istio: with several workload-specific policies the oldest wins; here, the first in the files.
        let namespace = all.first { $0.meta.namespace == identity.namespace && $0.selector.isEmpty }
        let mesh = all.first { $0.meta.namespace == "istio-system" && $0.selector.isEmpty }
        var mode = Mode.unset
        for level in [mesh, namespace] { if let level, level.mode != .unset { mode = level.mode } }
        if let w = workload.first {
            if w.mode != .unset { mode = w.mode }
            if let port, let p = w.portLevelMtls[port], p != .unset { mode = p }
        }
        return mode == .unset ? .permissive : mode
    }
}
