import SextantModel

/// Tag and attribute names of the OpenTelemetry ↔ Zipkin mapping (OpenTelemetry specification
/// `exporter-zipkin.md`; opentelemetry-collector-contrib `pkg/translator/zipkin/zipkinv2`).
enum ZipkinTagNames {
    static let statusCode = "otel.status_code"
    static let statusDescription = "otel.status_description"
    static let error = "error"
    static let scopeName = "otel.scope.name"
    static let scopeVersion = "otel.scope.version"
    /// The pre-1.25 semantic-convention names, still sent by older SDKs (and by the Python SDK
    /// alongside the new ones).
    static let libraryName = "otel.library.name"
    static let libraryVersion = "otel.library.version"
    static let traceState = "w3c.tracestate"
    /// Zipkin has no INTERNAL kind; the collector marks it with this tag (value `internal`).
    static let spanKind = "span.kind"
    /// Which resource attribute `localEndpoint.serviceName` came from, when not `service.name`.
    static let serviceNameSource = "otlp.service.name.source"
    /// Set on spans whose Zipkin `timestamp` was absent, so the exporter can omit it again.
    static let startTimeAbsent = "otel.zipkin.absentField.startTime"
    static let linkPrefix = "otlp.link."
    /// `mapping-to-non-otlp.md`, "Dropped Attributes Count" etc.
    static let droppedAttributesCount = "otel.dropped_attributes_count"
    static let droppedEventsCount = "otel.dropped_events_count"
    static let droppedLinksCount = "otel.dropped_links_count"

    // Endpoint attributes (semantic conventions v1.6.1, as the collector's translator uses them).
    static let hostIP = "net.host.ip"
    static let hostPort = "net.host.port"
    static let peerIP = "net.peer.ip"
    static let peerPort = "net.peer.port"
    static let peerService = "peer.service"

    static let serviceName = "service.name"
    /// Fallbacks for `localEndpoint.serviceName` when a resource has no `service.name`, in the
    /// collector's order.
    static let serviceNameFallbacks = ["faas.name", "k8s.deployment.name", "process.executable.name"]

    /// Tags that belong to the resource, not the span: the resource attribute names of semantic
    /// conventions v1.6.1 (the set the collector's translator moves), plus its OpenCensus extras.
    static let resourceKeys: Set<String> = [
        "cloud.provider", "cloud.account.id", "cloud.region", "cloud.availability_zone", "cloud.platform",
        "aws.ecs.container.arn", "aws.ecs.cluster.arn", "aws.ecs.launchtype", "aws.ecs.task.arn",
        "aws.ecs.task.family", "aws.ecs.task.revision", "aws.eks.cluster.arn", "aws.log.group.names",
        "aws.log.group.arns", "aws.log.stream.names", "aws.log.stream.arns",
        "container.name", "container.id", "container.runtime", "container.image.name", "container.image.tag",
        "deployment.environment",
        "device.id", "device.model.identifier", "device.model.name",
        "faas.name", "faas.id", "faas.version", "faas.instance", "faas.max_memory",
        "host.id", "host.name", "host.type", "host.arch", "host.image.name", "host.image.id", "host.image.version",
        "k8s.cluster.name", "k8s.node.name", "k8s.node.uid", "k8s.namespace.name", "k8s.pod.uid", "k8s.pod.name",
        "k8s.container.name", "k8s.replicaset.uid", "k8s.replicaset.name", "k8s.deployment.uid",
        "k8s.deployment.name", "k8s.statefulset.uid", "k8s.statefulset.name", "k8s.daemonset.uid",
        "k8s.daemonset.name", "k8s.job.uid", "k8s.job.name", "k8s.cronjob.uid", "k8s.cronjob.name",
        "os.type", "os.description", "os.name", "os.version",
        "process.pid", "process.executable.name", "process.executable.path", "process.command",
        "process.command_line", "process.command_args", "process.owner", "process.runtime.name",
        "process.runtime.version", "process.runtime.description",
        "service.name", "service.namespace", "service.instance.id", "service.version",
        "telemetry.sdk.name", "telemetry.sdk.language", "telemetry.sdk.version", "telemetry.auto.version",
        "webengine.name", "webengine.version", "webengine.description",
        "opencensus.starttime", "opencensus.exporterversion", "opencensus.resourcetype",
    ]
}

/// The tags the mapping reads or writes itself, by name. Every tag is classified once, from its key's
/// bytes, when a span is read or assembled, so the mapping finds them by position instead of comparing
/// each special name with every key.
enum ZipkinTagRole: Int, CaseIterable {
    case statusCode, statusDescription, error, scopeName, scopeVersion, libraryName, libraryVersion
    case traceState, spanKind, serviceNameSource, startTimeAbsent
    case droppedAttributesCount, droppedEventsCount, droppedLinksCount
    case hostIP, hostPort, peerIP, peerPort, peerService
    /// `otlp.link.<i>`; the index is parsed by the mapping.
    case link
    /// A resource attribute name (``ZipkinTagNames/resourceKeys``).
    case resource

    /// The role of a tag named by `key` (UTF-8), `nil` for an ordinary tag.
    static func of(_ key: UnsafeBufferPointer<UInt8>) -> ZipkinTagRole? {
        guard let first = key.first else { return nil }
        switch first {
        case UInt8(ascii: "o"):
            // otel.* and otlp.*
            if key.count > 10 && same(UnsafeBufferPointer(rebasing: key[..<10]), "otlp.link.") { return .link }
            for (name, role) in otelRoles where same(key, name) { return role }
            return resourceRole(key)
        case UInt8(ascii: "e"): return same(key, "error") ? .error : nil
        case UInt8(ascii: "w"): return same(key, "w3c.tracestate") ? .traceState : resourceRole(key)
        case UInt8(ascii: "s"): return same(key, "span.kind") ? .spanKind : resourceRole(key)
        case UInt8(ascii: "n"):
            for (name, role) in netRoles where same(key, name) { return role }
            return nil
        case UInt8(ascii: "p"): return same(key, "peer.service") ? .peerService : resourceRole(key)
        default: return resourceRole(key)
        }
    }

    // The names of ``ZipkinTagNames``, as static text for byte comparison (a unit test checks they agree).
    static let otelRoles: [(StaticString, ZipkinTagRole)] = [
        ("otel.status_code", .statusCode), ("otel.status_description", .statusDescription),
        ("otel.scope.name", .scopeName), ("otel.scope.version", .scopeVersion),
        ("otel.library.name", .libraryName), ("otel.library.version", .libraryVersion),
        ("otlp.service.name.source", .serviceNameSource), ("otel.zipkin.absentField.startTime", .startTimeAbsent),
        ("otel.dropped_attributes_count", .droppedAttributesCount),
        ("otel.dropped_events_count", .droppedEventsCount), ("otel.dropped_links_count", .droppedLinksCount),
    ]

    static let netRoles: [(StaticString, ZipkinTagRole)] = [
        ("net.host.ip", .hostIP), ("net.host.port", .hostPort), ("net.peer.ip", .peerIP), ("net.peer.port", .peerPort),
    ]

    @inline(__always)
    private static func same(_ key: UnsafeBufferPointer<UInt8>, _ name: StaticString) -> Bool {
        guard name.utf8CodeUnitCount == key.count else { return false }
        let p = name.utf8Start
        for i in 0..<key.count where key[i] != p[i] { return false }
        return true
    }

    /// Resource keys all start with one of a few namespaces, so most tags are ruled out without hashing.
    private static func resourceRole(_ key: UnsafeBufferPointer<UInt8>) -> ZipkinTagRole? {
        guard let dot = key.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        let namespace = UnsafeBufferPointer(rebasing: key[..<dot])
        let known: Bool
        switch namespace.count {
        case 2: known = same(namespace, "os")
        case 3: known = same(namespace, "aws") || same(namespace, "k8s")
        case 4: known = same(namespace, "host") || same(namespace, "faas")
        case 5: known = same(namespace, "cloud")
        case 6: known = same(namespace, "device")
        case 7: known = same(namespace, "service") || same(namespace, "process")
        case 9: known = same(namespace, "container") || same(namespace, "telemetry") || same(namespace, "webengine")
        case 10: known = same(namespace, "deployment") || same(namespace, "opencensus")
        default: known = false
        }
        guard known else { return nil }
        return ZipkinTagNames.resourceKeys.contains(String(decoding: key, as: UTF8.self)) ? .resource : nil
    }
}

extension ZipkinTagRole {
    /// The role of a tag named by `key`.
    static func of(_ key: String) -> ZipkinTagRole? {
        key.withUTF8Buffer { of($0) }
    }
}
