/// One Prometheus `relabel_config` as `metric_relabel_configs` uses it (Prometheus configuration docs,
/// `<relabel_config>`): `source_labels` joined by `separator` are matched against the fully anchored
/// `regex`; actions `replace`, `keep`, `drop`, `labeldrop`, `labelkeep`, `labelmap`, `lowercase`, `uppercase`.
///
/// The regex is Swift's `Regex`, which accepts the RE2 syntax Prometheus configs use (including
/// `(?P<name>…)`) apart from RE2-only corner cases; replacement references follow Go's `Regexp.Expand`:
/// `$1`, `${1}`, `$name`, `${name}`, `$$`; `$1x` names a group called `1x` (empty), as in Prometheus.
public struct RelabelRule: Sendable {
    public enum Action: String, Sendable, CaseIterable {
        case replace, keep, drop, labeldrop, labelkeep, labelmap, lowercase, uppercase
    }

    public var sourceLabels: [String]
    public var separator: String
    public var targetLabel: String
    public var replacement: String
    public var action: Action
    public let regex: AnchoredRegex

    public init(
        sourceLabels: [String] = [], separator: String = ";", regex: String = "(.*)", targetLabel: String = "",
        replacement: String = "$1", action: Action = .replace
    ) throws {
        self.sourceLabels = sourceLabels
        self.separator = separator
        self.regex = try AnchoredRegex(regex)
        self.targetLabel = targetLabel
        self.replacement = replacement
        self.action = action
    }

    /// Applies the rule; returns false when the series is dropped. `labels` includes `__name__`.
    public func apply(to labels: inout [ExpositionLabel]) -> Bool {
        func value(_ name: String) -> String {
            for l in labels where l.name == name { return l.value }
            return ""
        }
        switch action {
        case .keep, .drop, .replace, .lowercase, .uppercase:
            let joined = sourceLabels.map(value).joined(separator: separator)
            switch action {
            case .keep: return regex.matches(joined)
            case .drop: return !regex.matches(joined)
            case .lowercase: set(&labels, targetLabel, joined.lowercased())
            case .uppercase: set(&labels, targetLabel, joined.uppercased())
            default:
                guard let match = regex.match(joined) else { return true }
                let target = regex.expand(targetLabel, match)
                guard RelabelRule.isLabelName(target) else { return true }
                set(&labels, target, regex.expand(replacement, match))
            }
        case .labeldrop:
            labels.removeAll { regex.matches($0.name) }
        case .labelkeep:
            labels.removeAll { $0.name != "__name__" && !regex.matches($0.name) }
        case .labelmap:
            for l in labels {
                guard let match = regex.match(l.name) else { continue }
                let name = regex.expand(replacement, match)
                if RelabelRule.isLabelName(name) { set(&labels, name, l.value) }
            }
        }
        return true
    }

    /// Sets a label; an empty value removes it (Prometheus label semantics).
    private func set(_ labels: inout [ExpositionLabel], _ name: String, _ value: String) {
        if let i = labels.firstIndex(where: { $0.name == name }) {
            if value.isEmpty { labels.remove(at: i) } else { labels[i].value = value }
        } else if !value.isEmpty {
            labels.append(ExpositionLabel(name, value))
        }
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`
    public static func isLabelName(_ s: String) -> Bool {
        guard let first = s.utf8.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else { return false }
        return s.utf8.allSatisfy { b in
            (b | 0x20) &- UInt8(ascii: "a") < 26 || b == UInt8(ascii: "_") || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
        }
    }
}

/// A regular expression matched against whole strings (`^(?:re)$`), as Prometheus anchors relabel regexes.
///
/// `Regex<AnyRegexOutput>` is not `Sendable` only because its output type erases to `Any`; the compiled
/// program is immutable once built, so sharing it across tasks is safe.
public struct AnchoredRegex: @unchecked Sendable {
    public let source: String
    private let regex: Regex<AnyRegexOutput>

    public init(_ pattern: String) throws {
        source = pattern
        regex = try Regex("^(?:" + pattern + ")$")
        _ = try? regex.wholeMatch(in: "")
    }

    public func matches(_ s: String) -> Bool { (try? regex.wholeMatch(in: s)) != nil }

    func match(_ s: String) -> Regex<AnyRegexOutput>.Match? { try? regex.wholeMatch(in: s) }

    /// Go's `Regexp.Expand` over `template`.
    func expand(_ template: String, _ match: Regex<AnyRegexOutput>.Match) -> String {
        guard template.contains("$") else { return template }
        var out = ""
        var chars = template.unicodeScalars[...]
        func group(_ name: String) -> String {
            if let n = Int(name) {
                guard n < match.output.count, let sub = match.output[n].substring else { return "" }
                return String(sub)
            }
            guard let element = match.output[name], let sub = element.substring else { return "" }
            return String(sub)
        }
        func isWordChar(_ c: Unicode.Scalar) -> Bool { c == "_" || c.properties.isAlphabetic && c.isASCII || ("0"..."9").contains(c) }
        while let c = chars.first {
            chars = chars.dropFirst()
            guard c == "$", let next = chars.first else {
                out.unicodeScalars.append(c)
                continue
            }
            if next == "$" {
                out += "$"
                chars = chars.dropFirst()
            } else if next == "{" {
                guard let close = chars.firstIndex(of: "}") else {
                    out += "$"
                    continue
                }
                let name = String(String.UnicodeScalarView(chars[chars.index(after: chars.startIndex)..<close]))
                out += group(name)
                chars = chars[chars.index(after: close)...]
            } else {
                var name = ""
                while let d = chars.first, isWordChar(d) {
                    name.unicodeScalars.append(d)
                    chars = chars.dropFirst()
                }
                if name.isEmpty { out += "$" } else { out += group(name) }
            }
        }
        return out
    }
}

/// Target labels, `honor_labels` and `metric_relabel_configs` applied to scraped families (Prometheus'
/// scrape-time label handling, in its order): target labels (`job`, `instance`, static labels) are added to
/// every sample — on a clash the scraped label is renamed `exported_<name>` unless `honorLabels` — then the
/// rules run on each sample's labels plus `__name__`. A sample whose name is rewritten out of its family
/// becomes its own untyped family.
public enum ScrapeLabeling {
    public static func apply(
        _ families: [ExpositionFamily], targetLabels: [ExpositionLabel], honorLabels: Bool, rules: [RelabelRule]
    ) -> [ExpositionFamily] {
        if rules.isEmpty, let store = families.lazy.compactMap(\.samples.first).first?.store,
            families.allSatisfy({ $0.samples.allSatisfy { $0.store === store } })
        {
            return addTargetLabels(families, store: store, targetLabels: targetLabels, honorLabels: honorLabels)
        }
        // The relabeled samples share one new store; they are collected as (sample, entry) pairs and
        // pointed at the store once it is built.
        var builder = ExpositionStore.Builder()
        var out: [(family: ExpositionFamily, samples: [Pending])] = []
        out.reserveCapacity(families.count)
        var moved: [String: Int] = [:]
        var extra: [(family: ExpositionFamily, samples: [Pending])] = []
        var labels: [ExpositionLabel] = []
        for f in families {
            var kept: [Pending] = []
            kept.reserveCapacity(f.samples.count)
            for s in f.samples {
                labels.removeAll(keepingCapacity: true)
                for k in 0..<s.labelsCount { labels.append(ExpositionLabel(s.labelName(at: k), s.labelValue(at: k))) }
                merge(&labels, targetLabels, honor: honorLabels)
                var name = s.name
                if !rules.isEmpty {
                    labels.append(ExpositionLabel("__name__", name))
                    var keep = true
                    for r in rules where keep { keep = r.apply(to: &labels) }
                    guard keep else { continue }
                    let newName = labels.first { $0.name == "__name__" }?.value ?? ""
                    labels.removeAll { $0.name == "__name__" }
                    if newName != name {
                        guard !newName.isEmpty else { continue }
                        name = newName
                        let pending = Pending(sample: s, entry: builder.add(name: name, labels: labels, exemplar: s.exemplar))
                        if let i = moved[name] {
                            extra[i].samples.append(pending)
                        } else {
                            moved[name] = extra.count
                            extra.append((ExpositionFamily(name: name, line: s.line), [pending]))
                        }
                        continue
                    }
                }
                kept.append(Pending(sample: s, entry: builder.add(name: name, labels: labels, exemplar: s.exemplar)))
            }
            if kept.isEmpty && !f.samples.isEmpty { continue }
            out.append((f, kept))
        }
        let store = builder.build()
        return (out + extra).map { f, pending in
            var family = f
            family.samples = pending.map { p in
                ExpositionSample(
                    store: store, nameID: p.entry.nameID, labelStart: p.entry.labelStart, labelCount: p.entry.labelCount,
                    exemplarIndex: p.entry.exemplarIndex, value: p.sample.value, timestampNanos: p.sample.timestampNanos, line: p.sample.line)
            }
            return family
        }
    }

    /// Without rules, relabeling only adds the target labels (as `merge` does): the samples of one parse
    /// keep their store's strings, and one new store adds the target labels' strings and each sample's
    /// label references with the target labels in place — no string is copied per sample.
    ///
    /// Label names are compared as interned indices: how each name of the store orders against each target
    /// name (and each `exported_` name) is worked out once per name, not per sample (`NameOrder`).
    private static func addTargetLabels(
        _ families: [ExpositionFamily], store: ExpositionStore, targetLabels: [ExpositionLabel], honorLabels: Bool
    ) -> [ExpositionFamily] {
        var strings = store.strings
        let t = targetLabels.count
        let target = targetLabels.map { l in
            strings.append(l.name)
            strings.append(l.value)
            return ExpositionLabelRef(name: UInt32(strings.count - 2), value: UInt32(strings.count - 1))
        }
        // Keys 0..<t are the target names, t..<2t the `exported_` names a clash adds.
        var order = NameOrder(keys: targetLabels.map(\.name) + targetLabels.map { "exported_" + $0.name }, names: strings.count + t)
        var exported: [UInt32?] = Array(repeating: nil, count: t)
        let sampleCount = families.reduce(0) { $0 + $1.samples.count }
        var ranges: [(start: UInt32, count: UInt32)] = []
        ranges.reserveCapacity(sampleCount)
        // Each target label adds at most one label to a sample (itself, or an `exported_` one). Written
        // through a pointer: this runs for every sample of every scrape.
        let source = store.labels
        let out = UnsafeMutablePointer<ExpositionLabelRef>.allocate(capacity: source.count + sampleCount * t)
        defer { out.deallocate() }
        var w = 0
        for f in families {
            for s in f.samples {
                let start = w
                for k in Int(s.labelStart)..<Int(s.labelStart + s.labelCount) {
                    out[w] = source[k]
                    w += 1
                }
                for k in 0..<t {
                    var found = start
                    while found < w, order.compare(name: out[found].name, key: k, strings) != 0 { found += 1 }
                    var added = target[k]
                    var key = k
                    if found < w {
                        if honorLabels { continue }
                        let scraped = out[found].value
                        out[found].value = target[k].value
                        if strings[Int(scraped)].isEmpty { continue }
                        if exported[k] == nil {
                            strings.append(order.keys[t + k])
                            exported[k] = UInt32(strings.count - 1)
                        }
                        added = ExpositionLabelRef(name: exported[k]!, value: scraped)
                        key = t + k
                    } else if targetLabels[k].value.isEmpty {
                        continue
                    }
                    // Before the first label with a greater name (see `merge`).
                    var at = start
                    while at < w, order.compare(name: out[at].name, key: key, strings) <= 0 { at += 1 }
                    var j = w
                    while j > at {
                        out[j] = out[j - 1]
                        j -= 1
                    }
                    out[at] = added
                    w += 1
                }
                ranges.append((UInt32(start), UInt32(w - start)))
            }
        }
        let labels = Array(UnsafeBufferPointer(start: out, count: w))
        let relabeled = ExpositionStore(strings: strings, labels: labels, exemplars: store.exemplars)
        var r = 0
        return families.map { f in
            var family = f
            family.samples = f.samples.map { s in
                defer { r += 1 }
                return ExpositionSample(
                    store: relabeled, nameID: s.nameID, labelStart: ranges[r].start, labelCount: ranges[r].count, exemplarIndex: s.exemplarIndex,
                    value: s.value, timestampNanos: s.timestampNanos, line: s.line)
            }
            return family
        }
    }

    /// How interned label names order against a few fixed strings (`keys`), each pair compared once.
    private struct NameOrder {
        let keys: [String]
        /// Per name index, per key: 0 not yet compared, 1 less, 2 equal, 3 greater.
        private var table: [UInt8]

        /// `names`: how many name indices there can be.
        init(keys: [String], names: Int) {
            self.keys = keys
            table = Array(repeating: 0, count: names * keys.count)
        }

        /// The sign of `strings[name]` compared with `keys[key]`.
        @inline(__always)
        mutating func compare(name: UInt32, key: Int, _ strings: [String]) -> Int {
            let i = Int(name) * keys.count + key
            let c = table[i]
            return c != 0 ? Int(c) - 2 : fill(i, strings[Int(name)], key)
        }

        @inline(never)
        private mutating func fill(_ i: Int, _ name: String, _ key: Int) -> Int {
            let c: UInt8 = name < keys[key] ? 1 : name == keys[key] ? 2 : 3
            table[i] = c
            return Int(c) - 2
        }
    }

    /// A relabeled sample before its store exists: the original (for value, timestamp, line) and where its
    /// new name, labels and exemplar are in the builder.
    private struct Pending {
        var sample: ExpositionSample
        var entry: ExpositionStore.Builder.Entry
    }

    /// Added labels go before the first label with a greater name, so labels that came sorted (as client
    /// libraries write them) stay sorted and the assembler need not sort them.
    private static func merge(_ labels: inout [ExpositionLabel], _ target: [ExpositionLabel], honor: Bool) {
        func insert(_ label: ExpositionLabel) {
            labels.insert(label, at: labels.firstIndex { $0.name > label.name } ?? labels.endIndex)
        }
        for t in target {
            if let i = labels.firstIndex(where: { $0.name == t.name }) {
                if honor { continue }
                let scraped = labels[i].value
                labels[i].value = t.value
                if !scraped.isEmpty { insert(ExpositionLabel("exported_" + t.name, scraped)) }
            } else if !t.value.isEmpty {
                insert(t)
            }
        }
    }
}
