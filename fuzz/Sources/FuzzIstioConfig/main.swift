import FuzzSupport
import SextantIstio
import SextantPipeline

/// Istio YAML (VirtualService, DestinationRule, ServiceEntry, Gateway, mesh config) as `sextant proxy`
/// loads it: parse into resources, validate, and — when validation finds no error, as the proxy
/// requires before it swaps a table in — compile the route table and route a request to every host a
/// VirtualService names. Bad YAML must end as diagnostics, never as a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: data, count: size), as: UTF8.self)
    let diagnostics = Diagnostics()
    var resources = IstioResources()
    IstioConfigLoader.read(text, file: "fuzz.yaml", into: &resources, diagnostics: diagnostics)
    IstioConfigLoader.validate(resources, diagnostics: diagnostics)
    guard !diagnostics.hasErrors else { return 0 }
    for mode in [ProxyIdentity.Mode.sidecar, .gateway] {
        let identity = ProxyIdentity(workload: "productpage-v1", namespace: "default", labels: ["app": "productpage"], mode: mode)
        let table = RouteTable(resources: resources, identity: identity)
        for host in resources.virtualServices.lazy.flatMap(\.hosts).prefix(16) {
            let head = RequestHead(
                authority: String(host.map { $0 == "*" ? "x" : $0 }), path: "/api/v1?debug=1", method: "GET",
                headers: [(name: "end-user", value: "jason")], port: 80, sourceLabels: identity.labels,
                gateway: mode == .gateway ? "default/gateway" : nil)
            if case .route(let route, _) = table.route(head) {
                for r in [0, 37, 99] { _ = route.pick(random: r) }
            }
        }
    }
    return 0
}

runLibFuzzer(fuzz)
