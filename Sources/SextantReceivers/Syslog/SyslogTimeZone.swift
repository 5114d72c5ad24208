import Foundation

/// The time zone RFC 3164 timestamps are read in (the receiver's `location`, an IANA name such as
/// `Europe/Berlin`; default UTC), from the system's tz database.
public struct SyslogTimeZone: Sendable {
    let zone: TimeZone?

    public static let utc = SyslogTimeZone(zone: nil)

    /// `nil` when the name is not in the tz database.
    public init?(identifier: String) {
        if identifier == "UTC" || identifier == "Etc/UTC" {
            zone = nil
            return
        }
        guard let z = TimeZone(identifier: identifier) else { return nil }
        zone = z
    }

    private init(zone: TimeZone?) { self.zone = zone }

    /// Seconds east of UTC at the instant `utc` (Unix seconds).
    func offset(atUTC utc: Int) -> Int {
        guard let zone else { return 0 }
        return zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(utc)))
    }

    /// The offset in force at a wall-clock time given as if it were UTC (resolving DST transitions the
    /// way most syslog daemons do: the offset just before the wall time).
    func offset(atLocal local: Int) -> Int {
        guard zone != nil else { return 0 }
        let first = offset(atUTC: local)
        return offset(atUTC: local - first)
    }
}
