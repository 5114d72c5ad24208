extension RouteTable {
    /// The `Telemetry` resources that apply to this proxy, most specific first: those in the workload's
    /// namespace whose selector matches its labels, then the mesh-wide ones in the root namespace
    /// (`istio-system`), as Istio's Telemetry API layers them.
    public var applicableTelemetry: [TelemetryResource] {
        let mine = telemetry.filter { t in
            t.meta.namespace == identity.namespace && t.selector.allSatisfy { identity.labels[$0.key] == $0.value }
        }
        let root = telemetry.filter { $0.meta.namespace == "istio-system" && $0.meta.namespace != identity.namespace }
        return mine + root
    }

    /// Where an extension provider's `service`/`port` really is. Istio sends telemetry to the provider's
    /// service through the service's cluster, so when a `ServiceEntry` defines that host and port its first
    /// endpoint (with the endpoint's own port mapping) is used; otherwise the name is resolved as written.
    /// `service` may be `namespace/host` or a host name, as in `meshConfig.extensionProviders`.
    public func providerAddress(service: String, port: Int) -> (host: String, port: Int) {
        var host = service
        var namespace = "istio-system"
        if let slash = service.firstIndex(of: "/") {
            namespace = String(service[..<slash])
            host = String(service[service.index(after: slash)...])
        }
        let fqdn = HostName.qualify(host, namespace: namespace)
        if let e = clusters[ClusterKey(host: fqdn, port: port)]?.endpoints.first, e.address != fqdn {
            return (e.address, e.port)
        }
        return (host, port)
    }
}
