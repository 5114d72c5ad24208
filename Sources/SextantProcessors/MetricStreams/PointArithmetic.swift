import SextantModel

/// Overflow-checked arithmetic on point values. Values come from the network, so a wrapping or
/// trapping operation would either corrupt a stream or stop the process; callers treat `nil` as a
/// reset of the stream instead.
extension NumberValue {
    /// `self + other`; an int pair stays int (`nil` on overflow), anything else becomes double.
    func adding(_ other: NumberValue) -> NumberValue? {
        if case .int(let a) = self, case .int(let b) = other {
            let (r, o) = a.addingReportingOverflow(b)
            return o ? nil : .int(r)
        }
        return .double(asDouble + other.asDouble)
    }

    /// `self - earlier` for a monotonic counter: `nil` when the value went down (a reset), the value
    /// types differ, or the difference overflows.
    func increase(since earlier: NumberValue) -> NumberValue? {
        switch (self, earlier) {
        case (.int(let a), .int(let b)):
            guard a >= b else { return nil }
            let (r, o) = a.subtractingReportingOverflow(b)
            return o ? nil : .int(r)
        case (.double(let a), .double(let b)):
            guard a >= b else { return nil }
            return .double(a - b)
        default:
            return nil
        }
    }

    var isNaN: Bool {
        if case .double(let d) = self { return d.isNaN }
        return false
    }

    var isInt: Bool {
        if case .int = self { return true }
        return false
    }
}

extension Array where Element == UInt64 {
    /// Element-wise sum; `nil` when the lengths differ or a count overflows.
    func adding(_ other: [UInt64]) -> [UInt64]? {
        guard count == other.count else { return nil }
        var out = self
        for i in indices {
            let (r, o) = out[i].addingReportingOverflow(other[i])
            if o { return nil }
            out[i] = r
        }
        return out
    }

    /// Element-wise `self - earlier`; `nil` when the lengths differ or any count went down.
    func increase(since earlier: [UInt64]) -> [UInt64]? {
        guard count == earlier.count else { return nil }
        var out = self
        for i in indices {
            guard out[i] >= earlier[i] else { return nil }
            out[i] -= earlier[i]
        }
        return out
    }
}

/// Optional-aware min/max that keep a value only when both sides have one.
func combinedMin(_ a: Double?, _ b: Double?) -> Double? {
    guard let a, let b else { return nil }
    return Swift.min(a, b)
}

func combinedMax(_ a: Double?, _ b: Double?) -> Double? {
    guard let a, let b else { return nil }
    return Swift.max(a, b)
}
