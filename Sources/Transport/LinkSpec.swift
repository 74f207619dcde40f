/// A link's bandwidth and one-way delay, as written on the command line: `100mbit,40ms`.
public struct LinkSpec: Sendable, Hashable, CustomStringConvertible {
    /// Bytes per second; nil for unlimited.
    public var bytesPerSecond: Double?
    /// One-way delay added to every write, in seconds.
    public var delaySeconds: Double

    public init(bytesPerSecond: Double?, delaySeconds: Double) {
        self.bytesPerSecond = bytesPerSecond
        self.delaySeconds = delaySeconds
    }

    /// No shaping.
    public static let unlimited = LinkSpec(bytesPerSecond: nil, delaySeconds: 0)

    /// Parses `RATE[,DELAY]`: RATE is a number with bit, kbit, mbit or gbit (per second; `unlimited`
    /// for none), DELAY a number with us, ms or s. Examples: `100mbit,40ms`, `1gbit`, `unlimited,5ms`.
    public init(parsing text: String) throws {
        let parts = text.lowercased().split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 1 || parts.count == 2, let rateText = parts.first, !rateText.isEmpty else {
            throw LinkSpecError(text: text, reason: "expected RATE[,DELAY], e.g. 100mbit,40ms")
        }
        if rateText == "unlimited" {
            bytesPerSecond = nil
        } else {
            let units: [(String, Double)] = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1)]
            guard let (suffix, scale) = units.first(where: { rateText.hasSuffix($0.0) }),
                  let value = Double(rateText.dropLast(suffix.count)), value > 0, value.isFinite
            else { throw LinkSpecError(text: text, reason: "rate '\(rateText)' must be a positive number with bit, kbit, mbit or gbit") }
            bytesPerSecond = value * scale / 8
        }
        delaySeconds = 0
        if parts.count == 2 {
            let d = parts[1]
            let units: [(String, Double)] = [("us", 1e-6), ("ms", 1e-3), ("s", 1)]
            guard let (suffix, scale) = units.first(where: { d.hasSuffix($0.0) }),
                  let value = Double(d.dropLast(suffix.count)), value >= 0, value <= 60_000
            else { throw LinkSpecError(text: text, reason: "delay '\(d)' must be a non-negative number with us, ms or s") }
            delaySeconds = value * scale
        }
    }

    public var description: String {
        let rate = bytesPerSecond.map { rateText($0 * 8) } ?? "unlimited"
        return delaySeconds > 0 ? "\(rate),\(formatNumber(delaySeconds * 1e3))ms" : rate
    }

    private func rateText(_ bits: Double) -> String {
        if bits >= 1e9 { return formatNumber(bits / 1e9) + "gbit" }
        if bits >= 1e6 { return formatNumber(bits / 1e6) + "mbit" }
        if bits >= 1e3 { return formatNumber(bits / 1e3) + "kbit" }
        return formatNumber(bits) + "bit"
    }

    private func formatNumber(_ x: Double) -> String {
        x == x.rounded() ? String(Int(x)) : String(x)
    }
}

/// A link spec that could not be parsed.
public struct LinkSpecError: Error, CustomStringConvertible {
    public let text: String
    public let reason: String
    public var description: String { "link spec '\(text)': \(reason)" }
}
