import SextantPipeline

/// Every Istio resource read from the proxy's configuration files.
public struct IstioResources: Sendable {
    public var virtualServices: [VirtualService] = []
    public var destinationRules: [DestinationRule] = []
    public var serviceEntries: [ServiceEntry] = []
    public var gateways: [Gateway] = []
    public var telemetry: [TelemetryResource] = []
    public var requestAuthentications: [RequestAuthentication] = []
    public var peerAuthentications: [PeerAuthentication] = []
    public var mesh = MeshConfig()

    public init() {}
}

/// Reads multi-document YAML holding Istio resources as `kubectl get -o yaml` prints them
/// (single objects or `kind: List`), reporting every problem with its file:line at once.
public enum IstioConfigLoader {
    /// The API versions of `networking.istio.io` Istio serves; all have the same schema for our kinds.
    static let networkingVersions: Set<String> = ["v1", "v1beta1", "v1alpha3"]
    /// Istio kinds that exist but that sextant proxy does not implement: a warning, not an error.
    static let unsupportedIstioKinds: Set<String> = [
        "Sidecar", "WorkloadEntry", "WorkloadGroup", "EnvoyFilter", "ProxyConfig",
        "AuthorizationPolicy", "WasmPlugin",
    ]

    /// Loads and validates `paths` in order; throws `ConfigError` with every diagnostic when any is an error.
    public static func load(paths: [String], environment: [String: String] = [:]) throws(ConfigError) -> (IstioResources, warnings: [ConfigDiagnostic]) {
        let diagnostics = Diagnostics()
        var resources = IstioResources()
        for path in paths {
            guard let text = FileText.read(path) else {
                diagnostics.error(at: nil, "cannot read proxy config file '\(path)': \(FileText.lastErrorDescription())")
                continue
            }
            read(text, file: path, into: &resources, diagnostics: diagnostics, environment: environment)
        }
        validate(resources, diagnostics: diagnostics)
        if diagnostics.hasErrors { throw ConfigError(diagnostics.all) }
        return (resources, diagnostics.warnings)
    }

    /// Parses one file's text into `resources` (used by `load` and by tests).
    public static func read(
        _ text: String, file: String, into resources: inout IstioResources, diagnostics: Diagnostics,
        environment: [String: String] = [:]
    ) {
        for doc in YAMLLoader.parseAll(text, file: file, diagnostics: diagnostics, environment: environment) where !doc.isNull {
            object(doc, into: &resources, diagnostics: diagnostics)
        }
    }

    private static func object(_ node: ConfigNode, into resources: inout IstioResources, diagnostics: Diagnostics) {
        var r = ConfigReader(node, path: "", diagnostics: diagnostics)
        guard node.entries != nil else { return }
        let apiVersion = r.string("apiVersion", default: "")
        let kind = r.string("kind", default: "")
        if kind == "List" {
            guard let items = r.raw("items") else { return r.finish() }
            if case .sequence(let list) = items.value {
                for item in list { object(item, into: &resources, diagnostics: diagnostics) }
            } else {
                r.error("items", "items of a List must be a sequence")
            }
            _ = r.raw("metadata")
            return r.finish()
        }
        if apiVersion.isEmpty || kind.isEmpty {
            r.error(nil, "a resource needs apiVersion and kind")
            return
        }
        let parts = apiVersion.split(separator: "/", maxSplits: 1).map(String.init)
        let group = parts.count == 2 ? parts[0] : ""
        let version = parts.last ?? ""
        let istioGroups: Set<String> = ["networking.istio.io", "install.istio.io", "telemetry.istio.io", "security.istio.io", "extensions.istio.io"]
        guard istioGroups.contains(group) else {
            r.warning("apiVersion", "\(apiVersion) \(kind) is not an Istio resource; ignored")
            return
        }
        if unsupportedIstioKinds.contains(kind) {
            r.warning("kind", "\(kind) is not supported by sextant proxy; ignored")
            return
        }
        let meta = objectMeta(&r, kind: kind)
        _ = r.raw("status")
        var spec = r.section("spec")
        spec = ConfigReader(spec.node, path: "\(kind) \(meta.namespace)/\(meta.name) spec", diagnostics: diagnostics)
        let known = "networking.istio.io"
        switch (group, kind) {
        case (known, "VirtualService"), (known, "DestinationRule"), (known, "ServiceEntry"), (known, "Gateway"):
            if !networkingVersions.contains(version) {
                r.error("apiVersion", "unknown API version \(apiVersion) (use networking.istio.io/v1, v1beta1 or v1alpha3)")
            }
            switch kind {
            case "VirtualService": resources.virtualServices.append(.parse(&spec, meta: meta))
            case "DestinationRule": resources.destinationRules.append(.parse(&spec, meta: meta))
            case "ServiceEntry": resources.serviceEntries.append(.parse(&spec, meta: meta))
            default: resources.gateways.append(.parse(&spec, meta: meta))
            }
        case ("install.istio.io", "IstioOperator"):
            if let mc = spec.raw("meshConfig") {
                var m = ConfigReader(mc, path: "IstioOperator \(meta.name) spec::meshConfig", diagnostics: diagnostics)
                resources.mesh = MeshConfig.parse(&m)
            }
            // The rest of an IstioOperator (profile, components, values, hub, tag, ...) installs the
            // control plane; it does not configure a proxy.
            for k in spec.keys where k != "meshConfig" { _ = spec.raw(k) }
            spec.finish()
        case ("security.istio.io", "RequestAuthentication"):
            if version != "v1" && version != "v1beta1" {
                r.error("apiVersion", "unknown API version \(apiVersion) (use security.istio.io/v1 or v1beta1)")
            }
            resources.requestAuthentications.append(.parse(&spec, meta: meta))
        case ("security.istio.io", "PeerAuthentication"):
            if version != "v1" && version != "v1beta1" {
                r.error("apiVersion", "unknown API version \(apiVersion) (use security.istio.io/v1 or v1beta1)")
            }
            resources.peerAuthentications.append(.parse(&spec, meta: meta))
        case ("telemetry.istio.io", "Telemetry"):
            if version != "v1" && version != "v1alpha1" {
                r.error("apiVersion", "unknown API version \(apiVersion) (use telemetry.istio.io/v1)")
            }
            resources.telemetry.append(.parse(&spec, meta: meta))
        default:
            r.error("kind", "unknown kind '\(kind)' for \(apiVersion)\(hint(kind))")
        }
        r.finish()
    }

    private static func hint(_ kind: String) -> String {
        let kinds = ["VirtualService", "DestinationRule", "ServiceEntry", "Gateway", "IstioOperator", "Telemetry", "RequestAuthentication", "PeerAuthentication"]
        return kinds.first { $0.lowercased() == kind.lowercased() }.map { " (did you mean '\($0)'?)" } ?? ""
    }

    private static func objectMeta(_ r: inout ConfigReader, kind: String) -> ObjectMeta {
        var m = r.section("metadata")
        let name = m.string("name", default: "")
        if name.isEmpty { m.error(nil, "\(kind): metadata.name is required") }
        let meta = ObjectMeta(
            name: name, namespace: m.string("namespace", default: "default"), labels: m.labels("labels"), location: r.location)
        for k in [
            "annotations", "uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "ownerReferences",
            "finalizers", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "generateName",
        ] { _ = m.raw(k) }
        m.finish()
        return meta
    }

    /// Cross-resource checks: duplicates, and subsets that routes name but no rule defines.
    public static func validate(_ res: IstioResources, diagnostics: Diagnostics) {
        func duplicates(_ kind: String, _ metas: [ObjectMeta]) {
            var seen: [String: SourceLocation] = [:]
            for m in metas {
                let key = "\(m.namespace)/\(m.name)"
                if let first = seen[key] {
                    diagnostics.error(at: m.location, "\(kind) \(key) is defined twice (first at \(first))")
                } else {
                    seen[key] = m.location
                }
            }
        }
        duplicates("VirtualService", res.virtualServices.map(\.meta))
        duplicates("DestinationRule", res.destinationRules.map(\.meta))
        duplicates("ServiceEntry", res.serviceEntries.map(\.meta))
        duplicates("Gateway", res.gateways.map(\.meta))
        duplicates("Telemetry", res.telemetry.map(\.meta))
        duplicates("RequestAuthentication", res.requestAuthentications.map(\.meta))
        duplicates("PeerAuthentication", res.peerAuthentications.map(\.meta))

        var subsets: [String: Set<String>] = [:]
        for dr in res.destinationRules {
            subsets[HostName.qualify(dr.host, namespace: dr.meta.namespace), default: []].formUnion(dr.subsets.map(\.name))
        }
        for vs in res.virtualServices {
            for (i, route) in vs.http.enumerated() {
                let dests = route.route.map(\.destination) + (route.mirror.map { [$0] } ?? [])
                for d in dests {
                    guard let subset = d.subset else { continue }
                    let host = HostName.qualify(d.host, namespace: vs.meta.namespace)
                    if !(subsets[host]?.contains(subset) ?? false) {
                        diagnostics.error(
                            at: route.location ?? vs.meta.location,
                            "VirtualService \(vs.meta.namespace)/\(vs.meta.name) http[\(i)] routes to subset '\(subset)' of \(d.host), which no DestinationRule defines")
                    }
                }
            }
        }
    }
}
